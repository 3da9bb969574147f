#!/usr/bin/env bash
# One DB instance handed from one account to another by hand with the AWS CLI: the 21 calls
# an admin types for what `src-agent export` + `tgt-agent import` do. The benchmark
# (`cargo run --release -p e2e --bin bench`) runs it against the emulator to compare.
#
# Needs: DB, SOURCE_ACCOUNT, TARGET_ACCOUNT, SUBNET_GROUP, SECURITY_GROUP, AWS_REGION,
# AWS_ENDPOINT_URL, and each side's credentials as SRC_AWS_* and TGT_AWS_*.
set -euo pipefail
: "${DB:?}" "${SOURCE_ACCOUNT:?}" "${TARGET_ACCOUNT:?}" "${SUBNET_GROUP:?}" "${SECURITY_GROUP:?}"
umask 077
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# A local emulator's endpoint, when one is given.
endpoint=(${AWS_ENDPOINT_URL:+--endpoint-url "$AWS_ENDPOINT_URL"})
src() {
  AWS_ACCESS_KEY_ID=$SRC_AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$SRC_AWS_SECRET_ACCESS_KEY \
    AWS_SESSION_TOKEN=$SRC_AWS_SESSION_TOKEN aws "${endpoint[@]}" --output text "$@"
}
tgt() {
  AWS_ACCESS_KEY_ID=$TGT_AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY=$TGT_AWS_SECRET_ACCESS_KEY \
    AWS_SESSION_TOKEN=$TGT_AWS_SESSION_TOKEN aws "${endpoint[@]}" --output text "$@"
}

cat >"$work/policy.json" <<JSON
{"Version": "2012-10-17", "Statement": [
 {"Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$SOURCE_ACCOUNT:root"},
  "Action": "kms:*", "Resource": "*"},
 {"Sid": "Target", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::$TARGET_ACCOUNT:root"},
  "Action": ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
             "kms:CreateGrant", "kms:ListGrants", "kms:RevokeGrant"], "Resource": "*"}]}
JSON

# Source account.
src sts get-caller-identity >/dev/null                                                   # 1
key=$(src kms create-key --description "handoff of $DB" --policy "file://$work/policy.json" \
  --query KeyMetadata.Arn)                                                               # 2
src kms create-alias --alias-name "alias/by-hand/$DB" --target-key-id "$key"             # 3
src rds create-db-snapshot --db-instance-identifier "$DB" \
  --db-snapshot-identifier "$DB-by-hand-1" >/dev/null                                    # 4
src rds wait db-snapshot-available --db-snapshot-identifier "$DB-by-hand-1"              # 5
src rds copy-db-snapshot --source-db-snapshot-identifier "$DB-by-hand-1" \
  --target-db-snapshot-identifier "$DB-by-hand-shared" --kms-key-id "$key" >/dev/null    # 6
src rds wait db-snapshot-available --db-snapshot-identifier "$DB-by-hand-shared"         # 7
src rds modify-db-snapshot-attribute --db-snapshot-identifier "$DB-by-hand-shared" \
  --attribute-name restore --values-to-add "$TARGET_ACCOUNT" >/dev/null                  # 8
src rds describe-db-snapshot-attributes \
  --db-snapshot-identifier "$DB-by-hand-shared" >/dev/null                               # 9
src rds delete-db-snapshot --db-snapshot-identifier "$DB-by-hand-1" >/dev/null           # 10
shared="arn:aws:rds:$AWS_REGION:$SOURCE_ACCOUNT:snapshot:$DB-by-hand-shared"

# Target account.
tgt sts get-caller-identity >/dev/null                                                   # 11
tgt rds describe-db-snapshots --snapshot-type shared --include-shared \
  --query "DBSnapshots[?DBSnapshotArn=='$shared'].Encrypted" >/dev/null                 # 12
own=$(tgt kms create-key --description "imported $DB" --query KeyMetadata.Arn)           # 13
tgt kms create-alias --alias-name "alias/by-hand/imported/$DB" --target-key-id "$own"    # 14
tgt rds copy-db-snapshot --source-db-snapshot-identifier "$shared" \
  --target-db-snapshot-identifier "$DB-by-hand-copy" --kms-key-id "$own" >/dev/null      # 15
tgt rds wait db-snapshot-available --db-snapshot-identifier "$DB-by-hand-copy"           # 16
tgt rds restore-db-instance-from-db-snapshot --db-instance-identifier "$DB-by-hand" \
  --db-snapshot-identifier "$DB-by-hand-copy" --db-subnet-group-name "$SUBNET_GROUP" \
  --vpc-security-group-ids "$SECURITY_GROUP" >/dev/null                                  # 17
tgt rds wait db-instance-available --db-instance-identifier "$DB-by-hand"                # 18
# The new password goes through files, never argv.
password=$(head -c 32 /dev/urandom | base64 | tr -dc 'A-Za-z0-9' | head -c 24)
printf '{"DBInstanceIdentifier": "%s", "MasterUserPassword": "%s", "ApplyImmediately": true}' \
  "$DB-by-hand" "$password" >"$work/modify.json"
printf '{"username": "admin", "password": "%s"}' "$password" >"$work/secret.json"
tgt rds modify-db-instance --cli-input-json "file://$work/modify.json" >/dev/null         # 19
tgt secretsmanager create-secret --name "by-hand/$DB/master" --kms-key-id "$own" \
  --secret-string "file://$work/secret.json" >/dev/null                                  # 20
tgt rds delete-db-snapshot --db-snapshot-identifier "$DB-by-hand-copy" >/dev/null        # 21
