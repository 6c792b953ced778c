"""The web layer: every route of the wallboard, as plain functions that reach the running
parts only through `context.parts(request)`."""

from __future__ import annotations

from starlette.routing import BaseRoute, Mount, Route, WebSocketRoute
from starlette.staticfiles import StaticFiles

from wallboard.paths import web_dir
from wallboard.web import (
    actions,
    api,
    audit_views,
    board_api,
    history_views,
    hooks,
    kiosk_tokens,
    login,
    pages,
    provider,
    ws,
)


def routes() -> list[BaseRoute]:
    return [
        Route("/", pages.board, methods=["GET"]),
        Route("/kiosk", pages.kiosk, methods=["GET"]),
        Route("/login", login.login_form, methods=["GET"]),
        Route("/login", login.login_submit, methods=["POST"]),
        Route("/logout", login.logout, methods=["POST"]),
        Route("/api/me/ext", login.set_my_ext, methods=["POST"]),
        Route("/api/calls/{call_id}/{action}", actions.call_action, methods=["POST"]),
        Route("/api/click2call", actions.click2call, methods=["POST"]),
        Route("/api/audit", audit_views.audit_api, methods=["GET"]),
        Route("/api/kiosk-tokens", kiosk_tokens.list_tokens, methods=["GET"]),
        Route("/api/kiosk-tokens", kiosk_tokens.create_token, methods=["POST"]),
        Route("/api/kiosk-tokens/{token_id:int}/revoke", kiosk_tokens.revoke_token, methods=["POST"]),
        Route("/api/thresholds", board_api.thresholds, methods=["GET"]),
        Route("/api/thresholds", board_api.set_threshold, methods=["POST"]),
        Route("/api/wall", board_api.post_message, methods=["POST"]),
        Route("/api/wall/{message_id}/remove", board_api.remove_message, methods=["POST"]),
        Route("/audit", audit_views.audit_page, methods=["GET"]),
        Route("/history", history_views.history_page, methods=["GET"]),
        Route("/api/history/curve", history_views.curve_api, methods=["GET"]),
        Route("/api/history/export.csv", history_views.export_csv, methods=["GET"]),
        Route("/api/history/export.json", history_views.export_json, methods=["GET"]),
        Route("/api/state", api.api_state, methods=["GET"]),
        WebSocketRoute("/ws", ws.ws_endpoint),
        Route("/hooks/pbx/{secret}", hooks.receive, methods=["POST"]),
        Route("/healthz", api.healthz),
        Route("/readyz", api.readyz),
        Route("/metrics", api.metrics),
        Route("/provider", provider.provider_page, methods=["GET"]),
        Route("/provider/api/state", provider.provider_state, methods=["GET"]),
        WebSocketRoute("/provider/ws", provider.provider_ws),
        Mount("/static", StaticFiles(directory=web_dir("static")), name="static"),
    ]
