from tests.users.fast_env import app_env, pg_env, pg_pair, sqlite_template  # noqa: F401
