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

A fifth: Aurora's default encryption (DOMAIN.md §14). Since 2026-02-18 a new Aurora cluster
is encrypted with an AWS owned key unless told otherwise (`StorageEncryptionType` `sse-rds`
on the cluster and its snapshots), and moto knows no `StorageEncryptionType`. The shim gives
Aurora clusters and their snapshots the field: `sse-kms` when a key is named, `sse-rds` when
nothing is said, and `none` only when `StorageEncrypted=false` is said outright, which stands
here for a cluster made before that date. Assumed, not documented: `StorageEncrypted=true`
without a key means AWS's managed key (`sse-kms`), as before that date. A restore that names
a key ends `sse-kms`, one from an `sse-kms` snapshot keeps its key, any other ends `sse-rds`
(also from an unencrypted snapshot: documented). A snapshot copy without a key keeps its
source's type.
Two refusals stand for what AWS documents no way to do, so that a test fails if the toolkit
tries: sharing an `sse-rds` cluster snapshot with another account (an AWS owned key cannot be
granted to another account), and copying one under a KMS key. AWS names no error for either;
the shim answers `InvalidDBClusterSnapshotStateFault`, a stand-in.
Nothing else is changed.
"""

import copy
import secrets
import string

from moto.core.responses import ActionResult
from moto.rds.exceptions import InvalidDBClusterSnapshotStateFault
from moto.rds.models import (
    DBCluster,
    DBClusterSnapshot,
    DBInstance,
    RDSBackend,
    rds_backends,
)
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
    snapshot = self.get_db_cluster_snapshot(from_snapshot_id)
    if overrides.get("kms_key_id"):
        cluster.storage_encrypted = True
        cluster.storage_encryption_type = "sse-kms"
    elif getattr(snapshot, "storage_encryption_type", None) == "sse-kms":
        cluster.storage_encryption_type = "sse-kms"
    else:
        # Restored "without encryption": AWS's owned key, from an unencrypted snapshot too.
        _aws_owned(cluster)
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


def _aws_owned(cluster):
    cluster.storage_encrypted = True
    cluster.storage_encryption_type = "sse-rds"
    cluster.kms_key_id = None


_original_cluster_init = DBCluster.__init__


def cluster_init(self, *args, **kwargs):
    _original_cluster_init(self, *args, **kwargs)
    said = kwargs.get("storage_encrypted")
    if not str(self.engine).startswith("aurora"):
        # Only Aurora changed its default; other clusters keep moto's reading.
        self.storage_encryption_type = "sse-kms" if self.storage_encrypted else "none"
    elif kwargs.get("kms_key_id") or said is True or said == "true":
        self.storage_encryption_type = "sse-kms"
    elif said is None:
        _aws_owned(self)
    else:
        self.storage_encryption_type = "none"


DBCluster.__init__ = cluster_init


_original_cluster_snapshot_init = DBClusterSnapshot.__init__


def cluster_snapshot_init(self, *args, **kwargs):
    _original_cluster_snapshot_init(self, *args, **kwargs)
    if kwargs.get("kms_key_id"):
        kind = "sse-kms"
    else:
        kind = getattr(self.cluster, "storage_encryption_type", None) or (
            "sse-kms" if self.encrypted else "none"
        )
    self.storage_encryption_type = self.cluster.storage_encryption_type = kind
    if kind == "sse-rds":
        self.kms_key_id = None


DBClusterSnapshot.__init__ = cluster_snapshot_init


_original_modify_cluster_snapshot_attribute = RDSBackend.modify_db_cluster_snapshot_attribute


def modify_db_cluster_snapshot_attribute(
    self, db_cluster_snapshot_identifier, attribute_name, values_to_add=None, values_to_remove=None
):
    snapshot = self.get_db_cluster_snapshot(db_cluster_snapshot_identifier)
    others = [v for v in values_to_add or [] if v != self.account_id]
    if others and getattr(snapshot, "storage_encryption_type", None) == "sse-rds":
        raise InvalidDBClusterSnapshotStateFault(
            f"DB cluster snapshot {db_cluster_snapshot_identifier} is encrypted with an AWS owned "
            "key (sse-rds) and can't be shared with another account"
        )
    return _original_modify_cluster_snapshot_attribute(
        self, db_cluster_snapshot_identifier, attribute_name, values_to_add, values_to_remove
    )


RDSBackend.modify_db_cluster_snapshot_attribute = modify_db_cluster_snapshot_attribute


_original_copy_cluster_snapshot = RDSBackend.copy_db_cluster_snapshot


def copy_db_cluster_snapshot(self, source_db_cluster_snapshot_identifier, *args, **kwargs):
    source = self.get_db_cluster_snapshot(source_db_cluster_snapshot_identifier)
    if kwargs.get("kms_key_id") and getattr(source, "storage_encryption_type", None) == "sse-rds":
        raise InvalidDBClusterSnapshotStateFault(
            f"DB cluster snapshot {source_db_cluster_snapshot_identifier} is encrypted with an AWS "
            "owned key (sse-rds); AWS documents no copy of it under a KMS key"
        )
    return _original_copy_cluster_snapshot(
        self, source_db_cluster_snapshot_identifier, *args, **kwargs
    )


RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot
