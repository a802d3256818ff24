"""`nas-controller`: the program of a search's controller pod.

Exit codes: 0 when the search was decided (the decision is in status.controller), when
it is suspended or deleted, or on SIGTERM; 1 when this controller lost its lease or was
fenced out by a newer one (the newer one carries on) or failed otherwise (the operator
starts another, which resumes from the volume); 3 for an error no restart mends (an
invalid spec, a Trial the API server refuses, a bad environment): the termination
message says which (permanent.py), and the operator fails the search at once.
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from kubernetes import client, config
from nas_contracts.cluster import INVALID_CONFIGURATION

from nas_trainer.controller.config import ConfigError, ControllerConfig
from nas_trainer.controller.executor import SearchDeleted, SearchSuspended
from nas_trainer.controller.fencing import FencedOut
from nas_trainer.controller.lease import LeaseLost
from nas_trainer.controller.permanent import (
    EXIT_PERMANENT,
    InvalidSpec,
    PermanentError,
    write_termination_message,
)
from nas_trainer.manifest import ManifestError

log = logging.getLogger("nas_trainer.controller")


class Terminated(BaseException):
    """SIGTERM/SIGINT: stop where we are (every state is already on the volume)."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    raise Terminated(signal.Signals(signum).name)


def load_api_client() -> client.ApiClient:
    """In-cluster credentials in a pod; KUBECONFIG (or ~/.kube/config) elsewhere."""
    try:
        config.load_incluster_config()
    except config.ConfigException:
        config.load_kube_config()
    return client.ApiClient()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("kubernetes").setLevel(logging.WARNING)
    try:
        cfg = ControllerConfig.from_env()
    except ConfigError as err:
        log.error("%s", err)
        write_termination_message(PermanentError(INVALID_CONFIGURATION, str(err)), None)
        return EXIT_PERMANENT
    from nas_trainer.controller.runner import ControllerRunner  # after config: imports torch lazily

    signal.signal(signal.SIGTERM, _terminate)
    signal.signal(signal.SIGINT, _terminate)
    runner = ControllerRunner(cfg, load_api_client())
    try:
        decision = runner.run()
        log.info("search %s decided: %s", cfg.search, decision.reason)
        return 0
    except (SearchSuspended, SearchDeleted) as err:
        log.info("%s: stopping", err)
        return 0
    except (PermanentError, ManifestError) as err:
        permanent = err if isinstance(err, PermanentError) else InvalidSpec(str(err))
        log.error("%s: %s", permanent.reason, permanent.message)
        runner.report_permanent(permanent)
        write_termination_message(permanent, runner.generation)
        return EXIT_PERMANENT
    except (LeaseLost, FencedOut) as err:
        log.error("%s: stopping without writing anything more", err)
        return 1
    except Terminated as err:
        log.info("%s received: stopping", err)
        return 0
    except Exception:  # the operator replaces the pod; the next one resumes from the volume
        log.exception("controller failed")
        return 1
    finally:
        try:
            runner.release()
        except Terminated:
            pass


if __name__ == "__main__":
    sys.exit(main())
