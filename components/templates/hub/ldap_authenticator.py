# dsaas hub extra config: LDAPAuthenticator, made safe for a busy hub.
# 1. ldapauthenticator 2.0.2 talks to the directory with blocking ldap3 calls on the hub's event loop:
#    a burst of logins (a lecture starting) queues every request to the hub behind them. The login runs
#    on a worker thread instead, with its own event loop.
# 2. A directory that is down, or whose certificate the hub does not trust, makes it raise, and the user
#    gets a server error page. Refuse the login the normal way ("Invalid username or password") and log
#    the cause for the operator.
# 3. It checks the name as typed against a lower-case pattern before anything else, so "JDoe" (as
#    Windows shows it) is refused. Directories match login names case-insensitively and the hub
#    lower-cases user names after login anyway: the name is lower-cased first.
# Everything else, including the admin-group hook, is configured on LDAPAuthenticator and applies to this
# subclass unchanged. Runs inside jupyterhub_config.py, where `c` is the config.
# ruff: noqa: F821

import asyncio as _dsaas_asyncio
from concurrent.futures import ThreadPoolExecutor as _DsaasThreadPool

from ldap3.core.exceptions import LDAPException as _DsaasLDAPException
from ldapauthenticator import LDAPAuthenticator as _DsaasLDAPAuthenticator

_DSAAS_LDAP_THREADS = _DsaasThreadPool(max_workers=16, thread_name_prefix="ldap-login")


class DsaasLDAPAuthenticator(_DsaasLDAPAuthenticator):
    async def authenticate(self, handler, data):
        data = {**data, "username": (data.get("username") or "").lower()}
        blocking_login = super().authenticate
        loop = _dsaas_asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(
                _DSAAS_LDAP_THREADS, lambda: _dsaas_asyncio.run(blocking_login(handler, data))
            )
        except _DsaasLDAPException as error:
            self.log.error(
                "dsaas: login of %r refused: the LDAP directory %s:%s (tls_strategy %s) is unusable: %s: %s",
                data.get("username"),
                self.server_address,
                self.server_port,
                self.tls_strategy.name,
                type(error).__name__,
                error,
            )
            return None


c.JupyterHub.authenticator_class = DsaasLDAPAuthenticator
