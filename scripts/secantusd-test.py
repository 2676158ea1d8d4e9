"""SecantusDB for the MongoDB pass of scripts/test, with one setting its command line lacks.

Several tests SIGKILL an LRS inside a transaction and then wait until the server expires
that dead transaction before the next writer can go on (docs/RELIABILITY.md, "Fault
injection"). mongod and SecantusDB expire it after 60 s of idleness
(transactionLifetimeLimitSeconds); SecantusDB has no option for it, so this starts its
command line with a shorter lifetime, SECANTUS_TXN_LIFETIME_SECS (default 20). The tests
wait for the expiry however long it is; they only finish sooner. A transaction of a live
LRS is never idle for that long: each is a few commands in a row.

Usage: python scripts/secantusd-test.py [secantusd-py options…]
"""

import os
import sys

from secantus import server
from secantus.cli import main

LIFETIME = float(os.environ.get("SECANTUS_TXN_LIFETIME_SECS", "20"))

_init = server.SecantusDBServer.__init__


def _init_with_lifetime(self, *args, **kwargs):
    kwargs.setdefault("transaction_lifetime_seconds", LIFETIME)
    _init(self, *args, **kwargs)


server.SecantusDBServer.__init__ = _init_with_lifetime

if __name__ == "__main__":
    sys.exit(main())
