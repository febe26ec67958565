"""Disaster recovery commands for operators: after a lost cluster, find every user's home again.

`restore` (`python -m tools.restore plan <stack>`) reads the volume inventory the cluster wrote to the
object store (or asks ONTAP itself) and writes the reviewable restore plan `config/restore.<stack>.yaml`
that `dsaas:restore.plan` hands to `pulumi up`: per user the claim name KubeSpawner 7 computes now,
the ONTAP volume (or economy qtree) to bring back, its size, and what stands in the way.
"""
