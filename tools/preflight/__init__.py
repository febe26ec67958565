"""Operator pre-flight and try commands: check a stack's settings against the real world before `pulumi up`.

For operators: `new_stack` makes a stack of one's own from an example, without the example's secrets, and
prints the commands that set the ones its settings need; `ldap_check` asks the directory, with the hub's
own authenticator, whether a user may log in and as admin, and if not why and what to set; `try_hub` runs
the stack's rendered hub configuration in a real JupyterHub on 127.0.0.1 (a throwaway OpenLDAP from
`tools.lab`, or your directory). Commands: `python -m tools.new_stack`, `python -m tools.ldap_check`,
`python -m tools.try_hub`.
"""
