"""The ZooKeeper boundary: the only code that imports kazoo.

A session with typed requests and states (session.py), the lease that bounds how long a
silent leader may believe it leads (lease.py), batched joins (joins.py), connecting with a
verdict (connect.py) and the one place zkelect reaches into kazoo's private names (hooks.py,
behind a version guard). Nothing here knows what an election is.
"""
