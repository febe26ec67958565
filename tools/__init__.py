"""Commands for operators, reviewers and maintainers, grouped by who each part is for.

    offline/    the offline engine and what reviewers read: the recorded graph (mockgraph), preview, snapshot,
                diff, diagram, environment manifest, settings reference, Helm charts, policy runner, redaction
    preflight/  operator pre-flight and try commands: check a stack against the real world before `pulumi up`
    dr/         disaster recovery for operators: the restore plan of a lost cluster (who owned which volume)
    lab/        real local services (slapd, JupyterHub, a browser) for the tests and for try_hub
    bench/      benchmarks and models: what the program and its hub cost at scale
    ci/         the CI's fresh-machine check (fresh_machine.sh, run by .ci/run)

Commands (`python -m tools.<command>`; each module here is only an entry point into its package):

    preview          reviewers    offline preview of a stack: tree, artifacts, --snapshot, --diff, --diagram, policies
    settings_doc     maintainers  rewrite docs/settings.md from the typed settings
    charts           maintainers  (re)vendor a Helm chart the stacks deploy
    new_stack        operators    a stack of one's own from an example, and the secrets it needs
    ldap_check       operators    would the hub let this user in, and as admin? If not, why and what to set
    try_hub          operators    run the stack's hub settings in a local JupyterHub before `pulumi up`
    site_plan        operators    the DNS records and firewall openings a site prepares, read from the program
    s3_check         operators    can the stack's backups use its object store? If not, why and what to set
    restore          operators    `restore plan <stack>`: which old volume is whose, for a rebuilt cluster to import
    benchmark        maintainers  evaluate the program under mocks with many workers (the graph must stay flat)
    login_benchmark  maintainers  the hub's login throughput against a plain JupyterHub + ldapauthenticator
    bringup          maintainers  model how long a first `pulumi up` takes and what it waits on
"""
