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
snapshot quota. The shim answers it from moto's manual snapshot counts and the quota of the
tenth rule.

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

A sixth: AWS snapshots a database only while it is available (DOMAIN.md §12); moto snapshots
a stopped one. CreateDBSnapshot of an instance whose status is not `available` (or
`storage-optimization`) answers `InvalidDBInstanceState`, and CreateDBClusterSnapshot of a
cluster that is not `available` answers `InvalidDBClusterStateFault`, as AWS does (moto's
`creating`, which a new cluster shows once and then leaves, counts as available). The rule
sits on the two API calls only: StopDBInstance with `DBSnapshotIdentifier` still takes its
snapshot (moto takes it while the instance is available, then stops it), and so do a final
snapshot on delete and automated snapshots.

A seventh: a key no other account can use. A snapshot encrypted with its owner's AWS managed
key (`aws/rds`) can be shared, but that key's policy can never let another account in
(DOMAIN.md §1), so the other account's CopyDBSnapshot, CopyDBClusterSnapshot,
RestoreDBClusterFromSnapshot and RestoreDBInstanceFromDBSnapshot of it fail, with
`KMSKeyNotAccessibleFault` ("The source snapshot KMS key [...] does not exist, is not enabled
or you do not have permissions to access it", as AWS was seen answering a copy of one); moto
carries them out. The shim refuses them. A key is AWS managed when the owner's KMS in moto
says KeyManager `AWS` or names it by an `alias/aws/...` alias; moto's `default_kms_key_id`,
what it records for StorageEncrypted said without a key, stands for `aws/rds`, and an AWS
owned key (`sse-rds`) is refused alike. The share itself is let through, as AWS lets it through.
An eighth: the other account's side of a shared encrypted snapshot (DOMAIN.md §2). Its copy
must name `KmsKeyId` (RDS-MODEL CopyDBSnapshot, CopyDBClusterSnapshot); AWS names no error for
the omission, the shim answers `InvalidParameterValue`, a stand-in (the code AWS was seen
answering the same omission with in a copy across regions). And a DB instance is never
restored from one directly (USER_ShareSnapshot: copy it first); AWS names no error, the shim
answers `InvalidDBSnapshotState`, a stand-in. A shared unencrypted snapshot restores as before.
A ninth: an encrypted snapshot can't be made public (ModifyDBSnapshotAttribute,
ModifyDBClusterSnapshotAttribute): `all` added to its `restore` attribute is refused. AWS
documents the rule, not its error; the shim answers `InvalidDBSnapshotState` /
`InvalidDBClusterSnapshotStateFault`, stand-ins.
A tenth: the manual snapshot quota (DOMAIN.md §5). AWS allows 100 manual DB snapshots and 100
manual DB cluster snapshots per region by default and counts no automated snapshot in them;
moto allows 1,000 (`MOTO_RDS_SNAPSHOT_LIMIT`) and counts automated ones too, so an instance's
creation, which takes one, could meet it. The shim refuses a manual snapshot past 100
(CreateDBSnapshot, CopyDBSnapshot, CreateDBClusterSnapshot, CopyDBClusterSnapshot, a final
snapshot, a snapshot on stop) with `SnapshotQuotaExceeded`, as AWS does, counting manual
snapshots only, and DescribeAccountAttributes says the same Max; moto's own cap, which counts
automated snapshots too, is lifted so that only this rule refuses. The benchmark's thousand
databases need more, as an account raises the quota through Service Quotas:
`RDS_HANDOFF_MANUAL_SNAPSHOT_QUOTA` sets it for every account and region of the server.
An eleventh: copies across regions (DOMAIN.md §11). moto, as AWS, copies a snapshot named by
the ARN of another region into the caller's region, and refuses a KmsKeyId of another region;
but it lets an encrypted snapshot be copied into another region without KmsKeyId, where AWS
requires a key of the destination region (RDS-MODEL CopyDBSnapshot: "you must specify an
Amazon Web Services KMS key identifier for the destination Amazon Web Services Region"), and
its copy says nothing of where it came from, where AWS reports `SourceRegion` ("created in or
copied from") and `SourceDBSnapshotIdentifier` (the source's ARN) on a DB snapshot, and
`SourceDBClusterSnapshotArn` on a DB cluster snapshot. The
shim refuses the copy without a key with `InvalidParameterValue` (AWS documents no code; a
stand-in) and gives such copies those fields. A copy within one region is unchanged.
Nothing else is changed.
"""

import copy
import os
import secrets
import string

from moto.core.responses import ActionResult
from moto.rds.exceptions import (
    InvalidDBClusterSnapshotStateFault,
    InvalidDBClusterStateFault,
    RDSClientError,
)
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
    local = copy.copy(snapshot)
    local.db_snapshot_identifier = alias  # moto finds a snapshot by its own identifier
    self.database_snapshots[alias] = local
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
        return {"AccountQuotaName": name, "Used": used, "Max": MANUAL_SNAPSHOT_QUOTA}

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


_original_create_db_snapshot_call = RDSResponse.create_db_snapshot
_original_create_db_cluster_snapshot_call = RDSResponse.create_db_cluster_snapshot


def create_db_snapshot_call(self):
    name = self.params.get("DBInstanceIdentifier")
    database = self.backend.databases.get(name)
    if database is not None and database.status not in ("available", "storage-optimization"):
        raise RDSClientError(
            "InvalidDBInstanceState",
            f"Cannot create a snapshot because the database instance {name} is not currently "
            f"in the available state (it is {database.status}).",
        )
    return _original_create_db_snapshot_call(self)


def create_db_cluster_snapshot_call(self):
    name = self.params.get("DBClusterIdentifier")
    cluster = self.backend.clusters.get(name)
    status = getattr(cluster, "_status", None)
    if cluster is not None and status not in ("available", "creating"):
        raise InvalidDBClusterStateFault(
            f"DbCluster {name} is in {status} state but expected it to be one of available."
        )
    return _original_create_db_cluster_snapshot_call(self)


RDSResponse.create_db_snapshot = create_db_snapshot_call
RDSResponse.create_db_cluster_snapshot = create_db_cluster_snapshot_call


# Rules seven to ten (see the module docstring): what AWS refuses and moto lets through.

from moto.kms.models import kms_backends  # noqa: E402
from moto.rds.exceptions import (  # noqa: E402
    InvalidDBClusterSnapshotStateFault,
    InvalidParameterValue,
    RDSClientError,
    SnapshotQuotaExceededFault,
)

# AWS's default manual snapshot quota per region: instance and cluster snapshots apart;
# raised for the benchmark as Service Quotas would raise it.
MANUAL_SNAPSHOT_QUOTA = int(os.environ.get("RDS_HANDOFF_MANUAL_SNAPSHOT_QUOTA", "100"))
# moto's cap counts automated snapshots (one per instance made): never the one that binds.
RDSBackend.SNAPSHOT_QUOTA = property(lambda self: 1_000_000)


def _encrypted(snapshot):
    kind = getattr(snapshot, "storage_encryption_type", None)
    if kind is not None:
        return kind != "none"
    return bool(snapshot.encrypted)


def _key_no_other_account_can_use(snapshot, region, account):
    """Whether the snapshot's key is one no other account can be let use: its owner's AWS
    managed key (`aws/rds`), or an AWS owned key (`sse-rds`)."""
    if getattr(snapshot, "storage_encryption_type", None) == "sse-rds":
        return True
    key_id = snapshot.kms_key_id
    if not key_id or key_id == "default_kms_key_id":
        # moto's value for StorageEncrypted said without a key: AWS's aws/rds.
        return True
    if key_id.startswith("alias/aws/") or ":alias/aws/" in key_id:
        return True
    if key_id.startswith("arn:"):
        parts = key_id.split(":")
        if len(parts) > 5:
            region, account = parts[3], parts[4]
    try:
        key = kms_backends[account][region].describe_key(key_id)
    except Exception:
        return False
    return key.key_manager == "AWS" or any(a.startswith("alias/aws/") for a in key.aliases)


def _of_another_account(self, identifier):
    """(region, account) of a snapshot ARN owned by another account than the caller's."""
    owner = _owner(identifier)
    if owner is None or owner[1] == self.account_id:
        return None
    return owner[0], owner[1]


def _key_named(snapshot):
    key_id = snapshot.kms_key_id
    if getattr(snapshot, "storage_encryption_type", None) == "sse-rds":
        return "AWS owned key"
    return "alias/aws/rds" if key_id in (None, "default_kms_key_id") else key_id


def _refuse_foreign_key(snapshot, owner, identifier):
    if _encrypted(snapshot) and _key_no_other_account_can_use(snapshot, *owner):
        raise RDSClientError(
            "KMSKeyNotAccessibleFault",
            f"The source snapshot KMS key [{_key_named(snapshot)}] of {identifier} "
            "does not exist, is not enabled or you do not have permissions to access it.",
        )


def _refuse_copy_of_shared(self, identifier, kms_key_id, find):
    owner = _of_another_account(self, identifier)
    if owner is None:
        return
    snapshot = find(identifier)  # not shared with the caller: not found, as before
    if _encrypted(snapshot) and not kms_key_id:
        raise InvalidParameterValue(
            f"KmsKeyId must be specified to copy the encrypted snapshot {identifier}, which is "
            "shared from another account"
        )
    _refuse_foreign_key(snapshot, owner, identifier)


def _manual_count(snapshots):
    return sum(1 for s in snapshots.values() if s.snapshot_type == "manual")


def _room_for(snapshots, new_identifier):
    # A name taken is moto's DBSnapshotAlreadyExists to answer, full or not.
    if new_identifier is not None and new_identifier in snapshots:
        return
    if _manual_count(snapshots) >= MANUAL_SNAPSHOT_QUOTA:
        raise SnapshotQuotaExceededFault()


def _arg(args, kwargs, name, position, default=None):
    if name in kwargs:
        return kwargs[name]
    return args[position] if len(args) > position else default


_before_rule_seven_copy = RDSBackend.copy_db_snapshot
_before_rule_seven_copy_cluster = RDSBackend.copy_db_cluster_snapshot
_before_rule_seven_restore = RDSBackend.restore_db_instance_from_db_snapshot
_before_rule_seven_restore_cluster = RDSBackend.restore_db_cluster_from_snapshot
_before_rule_nine_share = RDSBackend.modify_db_snapshot_attribute
_before_rule_nine_share_cluster = RDSBackend.modify_db_cluster_snapshot_attribute
_before_rule_ten_create = RDSBackend.create_db_snapshot
_before_rule_ten_create_cluster = RDSBackend.create_db_cluster_snapshot


def copy_db_snapshot_checked(self, *args, **kwargs):
    source = _arg(args, kwargs, "source_db_snapshot_identifier", 0)
    target = _arg(args, kwargs, "target_db_snapshot_identifier", 1)
    kms_key_id = _arg(args, kwargs, "kms_key_id", 2)
    _refuse_copy_of_shared(self, source, kms_key_id, self.get_db_snapshot)
    _room_for(self.database_snapshots, target)
    return _before_rule_seven_copy(self, *args, **kwargs)


def copy_db_cluster_snapshot_checked(self, *args, **kwargs):
    source = _arg(args, kwargs, "source_db_cluster_snapshot_identifier", 0)
    target = _arg(args, kwargs, "target_db_cluster_snapshot_identifier", 1)
    kms_key_id = _arg(args, kwargs, "kms_key_id", 2)
    _refuse_copy_of_shared(self, source, kms_key_id, self.get_db_cluster_snapshot)
    _room_for(self.cluster_snapshots, target)
    return _before_rule_seven_copy_cluster(self, *args, **kwargs)


def restore_db_instance_from_db_snapshot_checked(self, from_snapshot_id, overrides):
    owner = _of_another_account(self, from_snapshot_id)
    if owner is not None:
        snapshot = self.get_db_snapshot(from_snapshot_id)
        _refuse_foreign_key(snapshot, owner, from_snapshot_id)
        if _encrypted(snapshot):
            raise RDSClientError(
                "InvalidDBSnapshotState",
                f"The snapshot {from_snapshot_id} is shared and encrypted: a DB instance can't be "
                "restored from it; copy it under a KMS key of this account, then restore the copy",
            )
    return _before_rule_seven_restore(self, from_snapshot_id, overrides)


def restore_db_cluster_from_snapshot_checked(self, from_snapshot_id, overrides):
    owner = _of_another_account(self, from_snapshot_id)
    if owner is not None:
        snapshot = self.get_db_cluster_snapshot(from_snapshot_id)
        _refuse_foreign_key(snapshot, owner, from_snapshot_id)
    return _before_rule_seven_restore_cluster(self, from_snapshot_id, overrides)


def _refuse_public(snapshot, identifier, attribute_name, values_to_add, error):
    if attribute_name == "restore" and "all" in (values_to_add or []) and _encrypted(snapshot):
        raise error(f"The snapshot {identifier} is encrypted: it can't be shared with `all`")


def modify_db_snapshot_attribute_checked(
    self, db_snapshot_identifier, attribute_name, values_to_add=None, values_to_remove=None
):
    _refuse_public(
        self.get_db_snapshot(db_snapshot_identifier),
        db_snapshot_identifier,
        attribute_name,
        values_to_add,
        lambda message: RDSClientError("InvalidDBSnapshotState", message),
    )
    return _before_rule_nine_share(
        self, db_snapshot_identifier, attribute_name, values_to_add, values_to_remove
    )


def modify_db_cluster_snapshot_attribute_checked(
    self, db_cluster_snapshot_identifier, attribute_name, values_to_add=None, values_to_remove=None
):
    _refuse_public(
        self.get_db_cluster_snapshot(db_cluster_snapshot_identifier),
        db_cluster_snapshot_identifier,
        attribute_name,
        values_to_add,
        InvalidDBClusterSnapshotStateFault,
    )
    return _before_rule_nine_share_cluster(
        self, db_cluster_snapshot_identifier, attribute_name, values_to_add, values_to_remove
    )


def create_db_snapshot_counted(self, *args, **kwargs):
    if _arg(args, kwargs, "snapshot_type", 2, "manual") == "manual":
        _room_for(self.database_snapshots, _arg(args, kwargs, "db_snapshot_identifier", 1))
    return _before_rule_ten_create(self, *args, **kwargs)


def create_db_cluster_snapshot_counted(self, *args, **kwargs):
    if _arg(args, kwargs, "snapshot_type", 2, "manual") == "manual":
        _room_for(self.cluster_snapshots, _arg(args, kwargs, "db_cluster_snapshot_identifier", 1))
    return _before_rule_ten_create_cluster(self, *args, **kwargs)


RDSBackend.copy_db_snapshot = copy_db_snapshot_checked
RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot_checked
RDSBackend.restore_db_instance_from_db_snapshot = restore_db_instance_from_db_snapshot_checked
RDSBackend.restore_db_cluster_from_snapshot = restore_db_cluster_from_snapshot_checked
RDSBackend.modify_db_snapshot_attribute = modify_db_snapshot_attribute_checked
RDSBackend.modify_db_cluster_snapshot_attribute = modify_db_cluster_snapshot_attribute_checked
RDSBackend.create_db_snapshot = create_db_snapshot_counted
RDSBackend.create_db_cluster_snapshot = create_db_cluster_snapshot_counted


_before_rule_eleven_copy = RDSBackend.copy_db_snapshot
_before_rule_eleven_copy_cluster = RDSBackend.copy_db_cluster_snapshot


def _from_another_region(self, identifier, kms_key_id, find):
    """The region a copy's source ARN names, when it is not the caller's; refuses an
    encrypted one copied without a key of the caller's region."""
    owner = _owner(identifier)
    if owner is None or owner[0] == self.region_name:
        return None
    if _encrypted(find(identifier)) and not kms_key_id:
        raise InvalidParameterValue(
            f"KmsKeyId must be specified to copy the encrypted snapshot {identifier} into "
            f"{self.region_name}: a key of the destination Region"
        )
    return owner[0]


def copy_db_snapshot_across(self, *args, **kwargs):
    source = _arg(args, kwargs, "source_db_snapshot_identifier", 0)
    kms_key_id = _arg(args, kwargs, "kms_key_id", 2)
    region = _from_another_region(self, source, kms_key_id, self.get_db_snapshot)
    copy = _before_rule_eleven_copy(self, *args, **kwargs)
    if region is not None:
        copy.source_region = region
        copy.source_db_snapshot_identifier = source
    return copy


def copy_db_cluster_snapshot_across(self, *args, **kwargs):
    source = _arg(args, kwargs, "source_db_cluster_snapshot_identifier", 0)
    kms_key_id = _arg(args, kwargs, "kms_key_id", 2)
    region = _from_another_region(self, source, kms_key_id, self.get_db_cluster_snapshot)
    copy = _before_rule_eleven_copy_cluster(self, *args, **kwargs)
    if region is not None:
        copy.source_db_cluster_snapshot_arn = source
    return copy


RDSBackend.copy_db_snapshot = copy_db_snapshot_across
RDSBackend.copy_db_cluster_snapshot = copy_db_cluster_snapshot_across
