"""The election core: node names and their order, the candidacy state machine, the observer.

It talks to ZooKeeper only through the boundary (``zkelect._zookeeper``) and hands out
leadership as the fencing layer's ``Leadership``.
"""
