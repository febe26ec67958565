# dsaas hub extra config: a directory that is down, or whose certificate the hub does not trust, makes
# ldapauthenticator 2.0.2 raise, and the user gets a server error page. Refuse the login the normal way
# instead ("Invalid username or password") and log the cause for the operator. Everything else, including
# the admin-group hook, is configured on LDAPAuthenticator and applies to this subclass unchanged.
# Runs inside jupyterhub_config.py, where `c` is the config.
# ruff: noqa: F821

from ldap3.core.exceptions import LDAPException as _DsaasLDAPException
from ldapauthenticator import LDAPAuthenticator as _DsaasLDAPAuthenticator


class DsaasLDAPAuthenticator(_DsaasLDAPAuthenticator):
    async def authenticate(self, handler, data):
        try:
            return await super().authenticate(handler, data)
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
