"""Several processes sharing one board through Redis (SPEC section 10).

- `keys.py`: every Redis name, per scope (tenant), in one Redis Cluster slot per scope;
- `lease.py`: one leader per scope, with a fencing token bumped on every win;
- `redis_bus.py`: the PatchBus over a Redis stream; the leader's fenced write, every node's reader;
- `intake.py`: webhooks accepted on any node, applied in order by the leader, none lost.
"""
