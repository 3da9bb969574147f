"""Prepares an account's network on the emulator for restores: a DB subnet group over the
default VPC's subnets, and that VPC's default security group. Prints them as JSON.

The test harness runs this with the account's credentials in the standard AWS_* variables
(moto's RDS needs real EC2 subnets, and the agents themselves never call EC2).
"""

import json
import sys

import boto3

name = sys.argv[1]
ec2 = boto3.client("ec2")
rds = boto3.client("rds")
vpc = ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"][0]["VpcId"]
subnets = [s["SubnetId"] for s in ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}])["Subnets"]]
groups = ec2.describe_security_groups(
    Filters=[{"Name": "vpc-id", "Values": [vpc]}, {"Name": "group-name", "Values": ["default"]}]
)["SecurityGroups"]
try:
    rds.create_db_subnet_group(DBSubnetGroupName=name, DBSubnetGroupDescription="rds-handoff tests", SubnetIds=subnets[:2])
except rds.exceptions.DBSubnetGroupAlreadyExistsFault:
    pass
print(json.dumps({"subnet_group": name, "security_group": groups[0]["GroupId"], "vpc": vpc}))
