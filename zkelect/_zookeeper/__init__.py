"""The ZooKeeper boundary: the only code that imports kazoo.

* session.py: a session's lifecycle and states, shared by the elections on one client;
* requests.py: its typed requests, and kazoo's exceptions turned into zkelect's;
* outcomes.py: what the requests end in (states, stats, failures), without kazoo;
* heartbeat.py: the heartbeat that renews the lease (whose arithmetic, pure, is
  zkelect/_lease.py: ElectionConfig checks its figures) and the watchdog for a silent
  connection;
* joins.py: batched joins (the candidate creates of many elections in a few multi-ops);
* connect.py: connecting with a verdict (TLS, SASL); options.py: the security values as
  KazooClient arguments;
* tools.py: the sessions of the operator tools, which only read (never acquired), and
  their client's connection states without kazoo;
* hooks.py: the one place zkelect reaches into kazoo's private names, behind a version
  guard (probe.py asks a member for its shortest session);
* words.py: the four-letter-word client (srvr, conf, mntr...).

Nothing here knows what an election is.
"""
