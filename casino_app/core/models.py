"""Import every table module so each Base's metadata is complete (alembic, tests)."""

from casino_app.games import models as _games  # noqa: F401
from casino_app.jobs import models as _jobs  # noqa: F401
from casino_app.payments import models as _payments  # noqa: F401
from casino_app.payments import rate_models as _rates  # noqa: F401
from casino_app.payments.eth import models as _eth_addresses  # noqa: F401
from casino_app.payments.eth import reconcile_models as _eth_reconcile  # noqa: F401
from casino_app.payments.eth import safe_models as _eth_safe  # noqa: F401
from casino_app.payments.eth import sweep_models as _eth_sweep  # noqa: F401
from casino_app.payments.eth import watch_models as _eth_watch  # noqa: F401
from casino_app.payments.eth import withdrawal_models as _eth_withdrawals  # noqa: F401
from casino_app.security import anchor_models as _anchors  # noqa: F401
from casino_app.security import models as _security  # noqa: F401
from casino_app.security import outbox_models as _outbox  # noqa: F401
from casino_app.users import models as _users  # noqa: F401
