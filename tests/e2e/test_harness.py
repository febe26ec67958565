"""The lab harness itself: a real slapd with TLS and ACLs, a real JupyterHub with LDAP login, a real browser."""

from __future__ import annotations

import json
import ssl
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import ldap3
import pytest
from ldap3.core.exceptions import LDAPSocketOpenError, LDAPStartTLSError
from ldap3.utils.conv import escape_filter_chars
from ldap3.utils.dn import escape_rdn
from playwright.sync_api import Page

from tests.e2e.conftest import HubFactory, LdapDirectoryFactory
from tools.lab import browser as lab_browser
from tools.lab.configs import ldap_hub_config
from tools.lab.directory import DirectoryInfo, DirectoryShape, LdapDirectory, dn_key
from tools.lab.hub import HubWorkspace, map_paths

SMALL_IMAGE = "quay.io/jupyter/scipy-notebook:2025-01-01"
LARGE_IMAGE = "quay.io/jupyter/pyspark-notebook:2025-01-01"
PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Small (2 CPU, 4 GB)",
        "slug": "small",
        "description": "Everyday notebooks",
        "default": True,
        "kubespawner_override": {
            "image": "quay.io/jupyter/scipy-notebook:2025-01-01",
            "cpu_limit": 2,
            "mem_limit": "4G",
        },
    },
    {
        "display_name": "Large (8 CPU, 32 GB)",
        "slug": "large",
        "description": "Big data",
        "kubespawner_override": {
            "image": "quay.io/jupyter/pyspark-notebook:2025-01-01",
            "cpu_limit": 8,
            "mem_limit": "32G",
        },
    },
]


def tls(directory: DirectoryInfo) -> ldap3.Tls:
    return ldap3.Tls(ca_certs_file=str(directory.ca_cert_path), validate=ssl.CERT_REQUIRED)


def starttls_connection(
    directory: DirectoryInfo, user: str | None = None, password: str | None = None, *, get_info: str = ldap3.NONE
) -> ldap3.Connection:
    server = ldap3.Server(directory.host, port=directory.ldap_port, tls=tls(directory), get_info=get_info)
    return ldap3.Connection(server, user=user, password=password, auto_bind=ldap3.AUTO_BIND_TLS_BEFORE_BIND)


def search_connection(directory: DirectoryInfo) -> ldap3.Connection:
    return starttls_connection(directory, directory.search_bind_dn, directory.search_password)


# ldapauthenticator 2.0.2's default group_search_filter, searched with each allowed group as the base
DEFAULT_GROUP_FILTER = "(|(member={userdn})(uniqueMember={userdn})(memberUid={uid}))"


def default_group_filter(directory: DirectoryInfo, login: str) -> str:
    user = directory.user(login)
    return DEFAULT_GROUP_FILTER.format(userdn=escape_filter_chars(user.dn), uid=escape_filter_chars(login))


def same_dns(found: Iterable[str], expected: Iterable[str]) -> bool:
    """DN sets equal as the directory compares them (the server writes `\\,` as `\\2C`)."""
    return {dn_key(dn) for dn in found} == {dn_key(dn) for dn in expected}


def read_group(conn: ldap3.Connection, directory: DirectoryInfo, group_dn: str) -> tuple[set[str], set[str]]:
    """(logins, group DNs) the group's membership attribute holds, as read from the directory."""
    attribute = directory.membership_attribute
    assert conn.search(group_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=[attribute]), group_dn
    [entry] = conn.entries
    values: list[str] = list(entry.entry_attributes_as_dict.get(attribute, []))
    if attribute == "memberUid":
        return set(values), set()
    logins = {dn_key(user.dn): login for login, user in directory.users.items()}
    groups = {dn_key(dn): dn for dn in directory.group_dns}
    unknown = [v for v in values if dn_key(v) not in logins and dn_key(v) not in groups]
    assert not unknown, f"{group_dn} has members the lab did not seed: {unknown}"
    return {logins[dn_key(v)] for v in values if dn_key(v) in logins}, {
        groups[dn_key(v)] for v in values if dn_key(v) in groups
    }


def assert_directory_matches(conn: ldap3.Connection, directory: DirectoryInfo) -> None:
    """Every group's members, and where the memberof overlay runs every memberOf, as `directory` (the truth) says."""
    for group_dn in directory.group_dns:
        logins, subgroups = read_group(conn, directory, group_dn)
        assert logins == set(directory.members(group_dn)), group_dn
        assert same_dns(subgroups, directory.subgroups.get(group_dn, ())), group_dn
    if not directory.has_memberof:
        return
    for login, user in directory.users.items():
        conn.search(user.dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
        [entry] = conn.entries
        assert same_dns(entry.memberOf.values, user.groups), login  # direct groups only, as AD's memberOf
    for group_dn in directory.group_dns:
        conn.search(group_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
        [entry] = conn.entries
        parents = [parent for parent, children in directory.subgroups.items() if group_dn in children]
        assert same_dns(entry.memberOf.values, parents), group_dn


# -- the directory -----------------------------------------------------------------------------
def test_starttls_verifies_against_the_handed_out_ca(ldap_directory: DirectoryInfo) -> None:
    conn = starttls_connection(ldap_directory, ldap_directory.search_bind_dn, ldap_directory.search_password)
    assert conn.tls_started
    assert conn.extend.standard.who_am_i() == f"dn:{ldap_directory.search_bind_dn}"
    conn.unbind()


def test_ldaps_verifies_against_the_handed_out_ca(ldap_directory: DirectoryInfo) -> None:
    server = ldap3.Server(
        ldap_directory.host, port=ldap_directory.ldaps_port, use_ssl=True, tls=tls(ldap_directory), get_info=ldap3.NONE
    )
    alice = ldap_directory.user("alice")
    conn = ldap3.Connection(server, user=alice.dn, password=alice.password, auto_bind=ldap3.AUTO_BIND_NO_TLS)
    assert conn.extend.standard.who_am_i() == f"dn:{alice.dn}"
    conn.unbind()


@pytest.mark.slow
def test_anonymous_bind_reads_nothing_but_the_root_dse_and_schema(shaped_directory: DirectoryInfo) -> None:
    directory = shaped_directory
    conn = starttls_connection(directory)
    conn.search(directory.base_dn, "(objectClass=*)", attributes=["*"])
    assert conn.entries == []
    conn.search(directory.people_base, f"({directory.user_attribute}=alice)", attributes=["*"])
    assert conn.entries == []
    conn.search(directory.users_group_dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["*"])
    assert conn.entries == []
    assert conn.search("", "(objectClass=*)", search_scope=ldap3.BASE, attributes=["namingContexts"])
    assert conn.entries[0].namingContexts.value == directory.base_dn
    assert conn.search("cn=Subschema", "(objectClass=subschema)", search_scope=ldap3.BASE, attributes=["objectClasses"])
    conn.unbind()


def test_wrong_password_is_refused(ldap_directory: DirectoryInfo) -> None:
    with pytest.raises(ldap3.core.exceptions.LDAPBindError):
        starttls_connection(ldap_directory, ldap_directory.user("alice").dn, "not-her-password")


def test_search_account_finds_alice_and_her_groups(ldap_directory: DirectoryInfo) -> None:
    # The default (RFC2307) shape: posixAccount users, posixGroup groups listing login names in memberUid.
    alice = ldap_directory.user("alice")
    conn = search_connection(ldap_directory)
    conn.search(
        ldap_directory.people_base, "(uid=alice)", attributes=["uid", "cn", "mail", "uidNumber", "userPassword"]
    )
    [entry] = conn.entries
    assert entry.entry_dn == alice.dn
    assert entry.mail.value == "alice@example.org"
    assert int(entry.uidNumber.value) > 0  # a posixAccount (no schema read: values come back as text)
    assert "userPassword" not in entry.entry_attributes_as_dict or not entry.userPassword.values
    for group, expected in [(ldap_directory.users_group_dn, True), (ldap_directory.admins_group_dn, False)]:
        conn.search(group, default_group_filter(ldap_directory, "alice"), search_scope=ldap3.BASE)
        assert bool(conn.entries) is expected, group
    conn.search(ldap_directory.groups_base, "(objectClass=posixGroup)", attributes=["cn", "memberUid"])
    assert {e.entry_dn for e in conn.entries} == set(ldap_directory.group_dns)
    users_group = next(e for e in conn.entries if e.entry_dn == ldap_directory.users_group_dn)
    assert set(users_group.memberUid.values) == {"alice", "bob", "jean-luc.picard"}
    conn.unbind()


def test_seeded_memberships(ldap_directory: DirectoryInfo) -> None:
    users, admins, other, nested = ldap_directory.group_dns
    groups = {name: user.groups for name, user in ldap_directory.users.items()}
    assert groups == {
        "alice": (users,),
        "bob": (users,),
        "carol": (admins,),
        "dave": (other,),
        "erin": (),
        "frank": (nested,),
        "jean-luc.picard": (users,),
    }
    assert all(user.login == user.name == login for login, user in ldap_directory.users.items())
    # A posixGroup holds names, not groups: research-team is not nested in the users group here.
    assert ldap_directory.subgroups == {}
    assert not ldap_directory.is_member("frank", users, nested=True)
    assert ldap_directory.members(users, nested=True) == {"alice", "bob", "jean-luc.picard"}


@pytest.mark.slow
def test_every_shape_seeds_the_same_people_and_groups(ldap_directories: dict[DirectoryShape, DirectoryInfo]) -> None:
    assert set(ldap_directories) == set(DirectoryShape)
    for shape, directory in ldap_directories.items():
        assert directory.shape is shape
        users = directory.users_group_dn
        assert {login: len(user.groups) for login, user in directory.users.items()} == {
            "alice": 1,
            "bob": 1,
            "carol": 1,
            "dave": 1,
            "erin": 0,
            "frank": 1,
            "jean-luc.picard": 1,
        }
        assert directory.members(directory.admins_group_dn) == {"carol"}
        assert directory.members(directory.other_group_dn) == {"dave"}
        assert directory.members(directory.nested_group_dn) == {"frank"}
        assert directory.members(users) == {"alice", "bob", "jean-luc.picard"}
        can_nest = shape is not DirectoryShape.RFC2307
        assert directory.is_member("frank", users, nested=True) is can_nest
        assert not directory.is_member("frank", users, nested=False)
        assert directory.user("frank").nested_groups == (
            (directory.nested_group_dn, users) if can_nest else (directory.nested_group_dn,)
        )
        assert all(user.password == f"{login}-Lab-pw-1" for login, user in directory.users.items())
        base = dn_key(directory.people_base)
        assert all(dn_key(user.dn)[-len(base) :] == base for user in directory.users.values()), "all below people_base"


@pytest.mark.slow
def test_search_account_finds_each_user_by_the_login_attribute(shaped_directory: DirectoryInfo) -> None:
    directory = shaped_directory
    conn = search_connection(directory)
    for login, user in directory.users.items():
        conn.search(
            directory.people_base,
            f"({directory.user_attribute}={escape_filter_chars(login)})",
            attributes=[directory.user_attribute, "cn", "mail", "userPassword"],
        )
        [entry] = conn.entries
        assert dn_key(entry.entry_dn) == dn_key(user.dn), login
        assert entry[directory.user_attribute].value == login
        assert entry.cn.value == user.cn
        assert not entry.entry_attributes_as_dict.get("userPassword"), login  # the search account never reads them
        if directory.dn_template is not None:
            assert directory.dn_template.format(username=escape_rdn(login)) == user.dn
    if directory.shape is DirectoryShape.ACTIVE_DIRECTORY:
        assert directory.dn_template is None
        conn.search(directory.people_base, "(uid=alice)")
        assert conn.entries == []  # the login is not a uid here (nor in any DN)
        ous = {dn_key(user.dn)[1] for user in directory.users.values()}
        assert len(ous) > 1, "AD users live in several OUs"
    conn.unbind()


@pytest.mark.slow
def test_memberships_in_the_directory_are_the_seeded_truth(shaped_directory: DirectoryInfo) -> None:
    directory = shaped_directory
    conn = search_connection(directory)
    assert_directory_matches(conn, directory)
    group_class = {"memberUid": "posixGroup", "member": "groupOfNames", "uniqueMember": "groupOfUniqueNames"}
    conn.search(directory.groups_base, f"(objectClass={group_class[directory.membership_attribute]})")
    assert same_dns((e.entry_dn for e in conn.entries), directory.group_dns)
    conn.unbind()
    # Each user, bound with their own password, sees their direct groups through ldapauthenticator's filter.
    for login, user in directory.users.items():
        own = starttls_connection(directory, user.dn, user.password)
        found = [
            group
            for group in directory.group_dns
            if own.search(group, default_group_filter(directory, login), search_scope=ldap3.BASE)
        ]
        assert same_dns(found, user.groups), login
        own.unbind()


@pytest.mark.slow
def test_schema_matches_the_shape(shaped_directory: DirectoryInfo) -> None:
    directory = shaped_directory
    conn = starttls_connection(directory, directory.search_bind_dn, directory.search_password, get_info=ldap3.SCHEMA)
    schema = conn.server.schema
    assert schema is not None
    attributes, classes = schema.attribute_types, schema.object_classes
    is_ad = directory.shape is DirectoryShape.ACTIVE_DIRECTORY
    has_nis = directory.shape in (DirectoryShape.RFC2307, DirectoryShape.OPENLDAP)
    assert has_nis is ("nis" in directory.schemas)
    assert ("memberUid" in attributes) is has_nis
    assert ("posixGroup" in classes) is has_nis
    assert ("sAMAccountName" in attributes) is is_ad
    assert ("userAccountControl" in attributes) is is_ad
    assert ("dsaasAdUser" in classes) is is_ad
    has_memberof = directory.shape in (DirectoryShape.ACTIVE_DIRECTORY, DirectoryShape.OPENLDAP)
    assert has_memberof is directory.has_memberof
    assert ("memberOf" in attributes) is has_memberof  # the memberof overlay defines it
    if is_ad:
        assert attributes["sAMAccountName"].single_value
        assert attributes["sAMAccountName"].equality == ["caseIgnoreMatch"]
        assert attributes["userAccountControl"].equality == ["integerMatch"]
    conn.unbind()


@pytest.mark.slow
def test_a_dn_with_an_escaped_comma_binds(shaped_directory: DirectoryInfo) -> None:
    directory = shaped_directory
    picard = directory.user("jean-luc.picard")
    assert picard.cn == "Picard, Jean-Luc"
    if directory.shape is DirectoryShape.ACTIVE_DIRECTORY:
        assert picard.dn == f"cn=Picard\\, Jean-Luc,ou=Clinic,{directory.people_base}"
    else:
        assert picard.dn == f"uid=jean-luc.picard,{directory.people_base}"
    conn = starttls_connection(directory, picard.dn, picard.password)
    assert dn_key(conn.extend.standard.who_am_i().removeprefix("dn:")) == dn_key(picard.dn)
    conn.unbind()
    # As ldapauthenticator's lookup_dn does: find the DN as the search account, bind with the DN as returned.
    search = search_connection(directory)
    search.search(directory.people_base, f"({directory.user_attribute}=jean-luc.picard)")
    [entry] = search.entries
    search.unbind()
    starttls_connection(directory, entry.entry_dn, picard.password).unbind()
    with pytest.raises(ldap3.core.exceptions.LDAPBindError):
        starttls_connection(directory, entry.entry_dn, "not-his-password")


@pytest.mark.slow
def test_openldap_shape_is_the_stock_install(ldap_directories: dict[DirectoryShape, DirectoryInfo]) -> None:
    directory = ldap_directories[DirectoryShape.OPENLDAP]
    users, nested = directory.users_group_dn, directory.nested_group_dn
    assert directory.dn_template == f"uid={{username}},{directory.people_base}"
    assert (directory.user_attribute, directory.membership_attribute) == ("uid", "member")
    assert directory.subgroups == {users: (nested,)}
    conn = search_connection(directory)
    conn.search(directory.people_base, "(objectClass=inetOrgPerson)", attributes=["objectClass"])
    assert same_dns((e.entry_dn for e in conn.entries), (u.dn for u in directory.users.values()))
    assert all("posixAccount" not in e.objectClass.values for e in conn.entries)
    conn.search(directory.groups_base, "(objectClass=groupOfNames)")
    assert same_dns((e.entry_dn for e in conn.entries), directory.group_dns)
    # The memberof overlay: frank is a direct member of research-team only; research-team of the users group.
    conn.search(directory.user("frank").dn, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
    assert same_dns(conn.entries[0].memberOf.values, [nested])
    conn.search(nested, "(objectClass=*)", search_scope=ldap3.BASE, attributes=["memberOf"])
    assert same_dns(conn.entries[0].memberOf.values, [users])
    assert directory.is_member("frank", users, nested=True)
    assert not directory.is_member("frank", users, nested=False)
    # nis is loaded: a filter naming memberUid is valid (it matches nobody: every group lists DNs in member).
    assert conn.search(users, "(memberUid=alice)", search_scope=ldap3.BASE) is False
    assert conn.result["result"] == 0
    conn.unbind()


@pytest.mark.slow
@pytest.mark.parametrize("shape", list(DirectoryShape), ids=str)
def test_membership_changes_take_effect_live(
    shape: DirectoryShape, ldap_directory_factory: LdapDirectoryFactory
) -> None:
    lab = ldap_directory_factory(shape=shape)
    users, admins, other, nested = lab.info.group_dns
    lab.remove_member(users, "alice")
    lab.add_member(users, "dave")
    lab.add_member(users, "dave")  # already a member: nothing changes
    lab.remove_member(admins, "erin")  # never a member: nothing changes
    info = lab.info
    assert not info.is_member("alice", users, nested=True)
    assert info.user("dave").groups == (other, users)
    assert info.members(users) == {"bob", "dave", "jean-luc.picard"}
    conn = search_connection(info)
    assert_directory_matches(conn, info)
    for login, expected in [("alice", False), ("dave", True)]:
        found = conn.search(users, default_group_filter(info, login), search_scope=ldap3.BASE)
        assert found is expected, login
    # The last member of a groupOfNames / groupOfUniqueNames cannot go (the schema requires one member);
    # a posixGroup may be empty.
    if shape is DirectoryShape.RFC2307:
        lab.remove_member(nested, "frank")
        assert lab.info.members(nested) == set()
    else:
        with pytest.raises(RuntimeError, match="objectClassViolation"):
            lab.remove_member(nested, "frank")
        assert lab.info.is_member("frank", users, nested=True)
        lab.add_member(nested, "erin")
        assert lab.info.is_member("erin", users, nested=True)
        assert not lab.info.is_member("erin", users, nested=False)
    assert_directory_matches(conn, lab.info)
    conn.unbind()
    # The changes survive a restart (same data, same ports).
    lab.stop()
    lab.start()
    conn = search_connection(lab.info)
    assert_directory_matches(conn, lab.info)
    conn.unbind()


@pytest.mark.slow
def test_an_ad_account_can_be_disabled(ldap_directory_factory: LdapDirectoryFactory) -> None:
    lab = ldap_directory_factory(shape=DirectoryShape.ACTIVE_DIRECTORY)
    disabled_filter = "(userAccountControl=514)"
    assert not lab.info.user("bob").disabled
    info = lab.set_account_disabled("bob", True)
    assert info.user("bob").disabled and lab.info is info
    conn = search_connection(info)
    conn.search(info.people_base, disabled_filter, attributes=["sAMAccountName"])
    assert [e.sAMAccountName.value for e in conn.entries] == ["bob"]
    lab.set_account_disabled("bob", False)
    conn.search(info.people_base, disabled_filter)
    assert conn.entries == []
    conn.search(info.people_base, "(userAccountControl=512)")
    assert len(conn.entries) == len(info.users)
    conn.unbind()
    with pytest.raises(ValueError, match="active-directory"):
        ldap_directory_factory().set_account_disabled("bob", True)


def test_foreign_ca_and_stopped_directory_are_refused(ldap_directory_factory: Callable[..., LdapDirectory]) -> None:
    untrusted = ldap_directory_factory(trusted_ca=False).info
    with pytest.raises((LDAPSocketOpenError, LDAPStartTLSError)):
        starttls_connection(untrusted, untrusted.search_bind_dn, untrusted.search_password)
    # The same directory without verification answers: only the certificate is wrong.
    server = ldap3.Server(untrusted.host, port=untrusted.ldap_port, get_info=ldap3.NONE)
    ldap3.Connection(
        server, untrusted.search_bind_dn, untrusted.search_password, auto_bind=ldap3.AUTO_BIND_NO_TLS
    ).unbind()

    directory = ldap_directory_factory()
    info = directory.info
    starttls_connection(info, info.search_bind_dn, info.search_password).unbind()
    directory.stop()
    with pytest.raises(LDAPSocketOpenError):
        starttls_connection(info, info.search_bind_dn, info.search_password)
    directory.start()  # back on the same port with the same data
    starttls_connection(info, info.search_bind_dn, info.search_password).unbind()


# -- the hub -----------------------------------------------------------------------------------
TEMPLATES = "/usr/local/etc/jupyterhub/templates"
LOGIN_TEMPLATE = """{% extends "templates/login.html" %}
{% block login_container %}<p id="lab-banner">{{ lab_banner }}</p>{{ super() }}{% endblock %}
"""


@pytest.mark.slow
def test_hub_lets_group_members_in_over_ldap(
    ldap_directory: DirectoryInfo, hub_workspace: HubWorkspace, hub_factory: HubFactory
) -> None:
    # hub.config + hub.extraConfig + hub.extraFiles, with the in-container template path mapped to the workspace
    hub_config = ldap_hub_config(ldap_directory)
    hub_config["JupyterHub"]["template_paths"] = [TEMPLATES]
    hub = hub_factory(
        map_paths(hub_config, hub_workspace.path_map, [TEMPLATES]),
        extra_config={"20-banner": "c.JupyterHub.template_vars = {'lab_banner': 'Welcome to DSaaS'}"},
        extra_files={f"{TEMPLATES}/login.html": LOGIN_TEMPLATE},
    )
    assert '<p id="lab-banner">Welcome to DSaaS</p>' in hub.session().get("/hub/login").body
    for name, allowed in [("alice", True), ("bob", True), ("erin", False), ("dave", False)]:
        session = hub.session()
        response = session.login(name, ldap_directory.user(name).password)
        if allowed:
            assert response.status == 302, (name, response.status)
            assert session.logged_in, name
        else:
            assert response.status == 403, (name, response.status)
            assert not session.logged_in, name
    refused = hub.session()
    assert refused.login("alice", "wrong").status == 403
    users = {u["name"] for u in hub.api("GET", "/users").json()}
    assert users == {"alice", "bob"}
    log = hub.log_text()
    assert "Loading pass-through config section hub.config.LDAPAuthenticator" in log
    assert "Loading extra config: 20-banner" in log


@pytest.mark.slow
def test_hub_log_names_an_untrusted_directory_certificate(
    ldap_directory_factory: Callable[..., LdapDirectory], hub_factory: HubFactory
) -> None:
    untrusted = ldap_directory_factory(trusted_ca=False).info
    hub = hub_factory(ldap_hub_config(untrusted))
    assert hub.session().login("alice", untrusted.user("alice").password).status == 500
    assert "CERTIFICATE_VERIFY_FAILED" in hub.log_text()


@pytest.mark.slow
def test_browser_login_profile_choice_and_jupyterlab(
    ldap_directory: DirectoryInfo, hub_factory: HubFactory, new_page: Callable[[str], Page]
) -> None:
    hub = hub_factory(ldap_hub_config(ldap_directory), profile_list=PROFILES)
    page = new_page(hub.url)
    lab_browser.login(page, "alice", ldap_directory.user("alice").password)
    assert page.url.endswith("/hub/spawn")
    lab_browser.choose_profile(page, "Large (8 CPU, 32 GB)")
    lab_browser.screenshot(page, "harness-profile-form")
    lab_browser.start_server(page)
    lab_browser.wait_for_lab(page)
    shot = lab_browser.screenshot(page, "harness-jupyterlab")
    assert shot.stat().st_size > 0

    server = hub.wait_for_server("alice")
    assert server["user_options"] == {"profile": "large"}
    home = hub.workspace.home_of("alice")
    assert home.is_dir()
    # The single-user server process runs in the claim-alice home with the profile in its environment.
    pid = server["state"]["pid"]
    environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
    assert environ["HOME"] == str(home)
    assert environ["LAB_PROFILE_SLUG"] == "large"
    assert json.loads(environ["LAB_PROFILE_OVERRIDE"])["image"] == LARGE_IMAGE
    assert Path(f"/proc/{pid}/cwd").resolve() == home.resolve()

    # The home is the per-user volume: it survives stopping the server and starting it with another profile.
    (home / "notes.txt").write_text("kept")
    assert hub.api("DELETE", "/users/alice/server").status in (202, 204)
    hub.wait_for_stopped("alice")
    assert hub.api("POST", "/users/alice/server", {"profile": "small"}).status in (201, 202)
    assert hub.wait_for_server("alice")["user_options"] == {"profile": "small"}
    assert (home / "notes.txt").read_text() == "kept"
