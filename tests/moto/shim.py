"""Closes one gap of moto 5.2 for rds-handoff's tests: cross-account snapshot ARNs.

moto looks a snapshot ARN owned by another account up in the *caller's* account, so a
snapshot shared with the caller can never be copied or restored across accounts. AWS
resolves the ARN in its owning account and lets the caller use it only when the caller's
account (or `all`) is in the snapshot's `restore` attribute; otherwise it answers
DBSnapshotNotFound / DBClusterSnapshotNotFoundFault. This shim does the same, for
CopyDBSnapshot, CopyDBClusterSnapshot, RestoreDBClusterFromSnapshot and
RestoreDBInstanceFromDBSnapshot given a snapshot ARN.

A second, smaller gap: a cluster restored with KmsKeyId from an unencrypted snapshot stays
unencrypted in moto; in AWS the restore encrypts it with that key (that is how an
unencrypted Aurora cluster gets encrypted). The shim marks such a cluster encrypted.

A third: moto has no DescribeAccountAttributes, which the agents read for the manual
snapshot quota. The shim answers it from moto's own snapshot counts and quota.

A fourth: moto gives every DB instance the same DbiResourceId; in AWS each instance gets its
own, never reused, even when a new instance takes a deleted one's name (tgt-agent ties the
"password set" marker to it). The shim gives each instance a fresh one.
Nothing else is changed.
"""

import copy
import secrets
import string

from moto.core.responses import ActionResult
from moto.rds.models import DBInstance, RDSBackend, rds_backends
from moto.rds.responses import RDSResponse

_original_get_snapshot = RDSBackend.get_snapshot
_original_restore_cluster = RDSBackend.restore_db_cluster_from_snapshot
_original_restore_instance = RDSBackend.restore_db_instance_from_db_snapshot


def _owner(identifier):
    """(region, account, name) of a snapshot ARN, or None for a plain identifier."""
    if not identifier.startswith("arn:"):
        return None
    parts = identifier.split(":", 6)
    if len(parts) < 7:
        return None
    return parts[3], parts[4], parts[6]


def get_snapshot(self, identifier, resource_type, not_found_exception):
    owner = _owner(identifier)
    if owner is None or owner[1] == self.account_id:
        return _original_get_snapshot(self, identifier, resource_type, not_found_exception)
    region, account, name = owner
    snapshots = rds_backends[account][region].resource_map[resource_type]
    snapshot = snapshots.get(name)
    if snapshot is None:
        raise not_found_exception(identifier)
    allowed = snapshot.attributes.get("restore", [])
    if self.account_id not in allowed and "all" not in allowed:
        raise not_found_exception(identifier)
    return snapshot


def restore_db_cluster_from_snapshot(self, from_snapshot_id, overrides):
    owner = _owner(from_snapshot_id)
    if owner is None or owner[1] == self.account_id:
        cluster = _original_restore_cluster(self, from_snapshot_id, overrides)
    else:
        snapshot = self.get_db_cluster_snapshot(from_snapshot_id)
        props = copy.copy(snapshot.cluster.get_cfg())
        for key, value in overrides.items():
            if value:
                props[key] = value
        cluster = self.create_db_cluster(props)
    if overrides.get("kms_key_id"):
        cluster.storage_encrypted = True
    return cluster


def restore_db_instance_from_db_snapshot(self, from_snapshot_id, overrides):
    owner = _owner(from_snapshot_id)
    if owner is None or owner[1] == self.account_id:
        return _original_restore_instance(self, from_snapshot_id, overrides)
    snapshot = self.get_db_snapshot(from_snapshot_id)
    # Restore through a local alias of the shared snapshot, then drop the alias.
    alias = f"shim-restore-{snapshot.db_snapshot_identifier}"
    self.database_snapshots[alias] = snapshot
    try:
        return _original_restore_instance(self, alias, overrides)
    finally:
        self.database_snapshots.pop(alias, None)


RDSBackend.get_snapshot = get_snapshot
RDSBackend.restore_db_cluster_from_snapshot = restore_db_cluster_from_snapshot
RDSBackend.restore_db_instance_from_db_snapshot = restore_db_instance_from_db_snapshot


def describe_account_attributes(self):
    backend = self.backend

    def quota(name, snapshots):
        used = sum(1 for s in snapshots.values() if s.snapshot_type == "manual")
        return {"AccountQuotaName": name, "Used": used, "Max": backend.SNAPSHOT_QUOTA}

    return ActionResult(
        {
            "AccountQuotas": [
                quota("ManualSnapshots", backend.database_snapshots),
                quota("ManualClusterSnapshots", backend.cluster_snapshots),
            ]
        }
    )


RDSResponse.describe_account_attributes = describe_account_attributes


_original_instance_init = DBInstance.__init__


def instance_init(self, *args, **kwargs):
    _original_instance_init(self, *args, **kwargs)
    alphabet = string.ascii_uppercase + string.digits
    self.dbi_resource_id = "db-" + "".join(secrets.choice(alphabet) for _ in range(26))


DBInstance.__init__ = instance_init
