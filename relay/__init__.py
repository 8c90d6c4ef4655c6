"""hpoll relay: collects reports from many homes and tells caregivers what they need to know."""

import os

__version__ = "0.2.0"

# Files are sent through the transport's writes, where a client that reads nothing is dropped
# after a while (http/serve.py); the kernel's sendfile would wait for it for good, holding the
# file open. aiohttp reads this when it is first imported, which comes after this package.
os.environ.setdefault("AIOHTTP_NOSENDFILE", "1")
