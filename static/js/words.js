// The catalogue keys (i18n.js) of the codes the server sends: what a tile or a
// row says for a state, a direction, a monitor or a source.

export const STATE_WORDS = {
  offline: 'state.offline', idle: 'state.idle', ringing: 'state.ringing', oncall: 'state.oncall',
};
export const CALL_STATE_WORDS = { ringing: 'call.state.ringing', answered: 'call.state.answered' };
export const DIR_WORDS = { inbound: 'dir.inbound', outbound: 'dir.outbound', internal: 'dir.internal' };
export const DIR_ICONS = { inbound: '↙', outbound: '↗', internal: '↔' };
export const MONITOR_WORDS = { listen: 'monitor.listen', whisper: 'monitor.whisper', barge: 'monitor.barge' };
// A supervisor's own leg of a monitor, in the calls list.
export const LEG_WORDS = { listen: 'monitor.leg_listen', whisper: 'monitor.leg_whisper', barge: 'monitor.leg_barge' };
export const ACTION_WORDS = {
  listen: 'action.listen', whisper: 'action.whisper', barge: 'action.barge', transfer: 'action.transfer',
};
export const SOURCE_WORDS = {
  agents: 'source.agents', calls: 'source.calls', status: 'source.status', cdr: 'source.cdr',
};
