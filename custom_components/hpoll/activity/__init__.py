"""The home's activity, free of Home Assistant: what the bridge's report times say happened
(``tracker``), the day's counts and the latest activity per room (``log``), the learned quiet
baseline (``baseline``), the report sent to a relay (``report``) and its persistent queue
(``push_queue``). Nothing here imports ``homeassistant``; the HA glue sits above this package.
"""
