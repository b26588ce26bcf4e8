from tests.users.fast_env import app_env, mail_settles, pg_env, pg_pair, sqlite_template  # noqa: F401
