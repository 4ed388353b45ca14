"""The decision core: plain data in (``model.Observation``), plain data out (``model.Plan``).

Nothing here does I/O, logs, reads the clock or draws random numbers, so every decision can be
tested as a table and replayed from a recorded observation (``.importlinter`` enforces it).
The single entry point is ``floating_ip.core.plan.plan``. Each decision is written down where
it is made:

- ``annotations``  — the user's annotations, their defaults and valid values;
- ``claims``       — which Services may share an IP, and who wins a port conflict;
- ``ip_checks``    — an IP must exist in the account and sit in the cluster's region;
- ``fitness``      — when a node may hold an IP (which taints count, where anchors come from);
- ``node_selector`` — which nodes a Service's ``node-selector`` annotation selects;
- ``rendezvous``   — the deterministic preference order of nodes per IP;
- ``upgrades``     — an IP that moves prefers the newest kubelet version (surge upgrades);
- ``placement``    — stickiness, one IP per droplet, maximum matching, what stays put;
- ``holders``      — the holder, anchor and assignment of every IP;
- ``external_ips`` — which externalIPs entries are ours, and make-before-break;
- ``openings``, ``firewall_rules``, ``firewall`` — the project's own firewall;
- ``allocation``   — reserved IPs created for ``address: auto``, adopted after a crash,
  released;
- ``finalizers``   — the cleanup finalizer on and off;
- ``uninstall``    — every Service planned as if it had opted out;
- ``status``, ``events``, ``patches``, ``report`` — what people and the apply step get.
"""
