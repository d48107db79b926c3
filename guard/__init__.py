"""Guards at the edges shared by the AS, the resource server and the agent client: a JSON loader for
untrusted bytes (size and depth limits) and the log filter that keeps tokens and secrets out of logs.

A leaf package: it imports nothing of ours, so ``authz`` and ``resource_server`` (which never import
each other) share one implementation instead of twins.
"""
