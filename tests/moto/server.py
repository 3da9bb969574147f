"""Starts moto server with rds-handoff's shim loaded, on 127.0.0.1:<port>.

The server exits when its standard input closes, so it never outlives the test process
that started it, even if that process is killed; the database servers of the data plane
(`dataplane.py`, on when `RDS_HANDOFF_DATA_DIR` is set) are stopped first.
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

# The port the Step Functions shim sends executions' tasks to: this server.
os.environ["MOTO_PORT"] = sys.argv[1]
os.environ.setdefault("RDS_HANDOFF_STATES_ROUTES", os.devnull)

import shim  # noqa: E402,F401  (patches moto on import)
import states_shim  # noqa: E402,F401  (patches moto's Step Functions on import)
import dataplane  # noqa: E402  (real database servers behind opted-in databases)
from moto.core.config import default_user_config  # noqa: E402
from moto.server import main  # noqa: E402

# Execute state machines (moto's default only records executions).
default_user_config["stepfunctions"]["execute_state_machine"] = True


def _exit_when_parent_goes():
    sys.stdin.read()
    try:
        dataplane.stop_all()
    finally:
        os._exit(0)


threading.Thread(target=_exit_when_parent_goes, daemon=True).start()
main(["-H", "127.0.0.1", "-p", sys.argv[1]])
