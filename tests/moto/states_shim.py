"""Closes moto 5.2's gaps in running Step Functions AWS SDK tasks (DOMAIN.md §10).

With `{"stepfunctions": {"execute_state_machine": true}}` moto executes state machines, but
an `arn:aws:states:::aws-sdk:*` task differs from AWS in five ways, each closed here:

1. Account: moto sends every task with fixed credentials, so it acts in moto's default
   account. AWS acts as the execution role: the shim assumes the execution's role (on this
   server's STS) and sends the task with those credentials, in that role's account.
2. Endpoint: moto sends tasks to `localhost:$MOTO_PORT`; the shim sends them to this server.
3. Casing: AWS spells parameters and results as the AWS SDK for Java 2.x names members,
   capitalized (`DbSnapshotIdentifier`, `SourceDBSnapshotIdentifier`, `MultiAZ`; results
   `DbSnapshots[0].Status`); moto passes parameters to botocore as given and returns
   botocore's names and Python datetimes. The shim maps parameters to botocore's names
   through the service model, and results back to AWS's, timestamps as ISO 8601 text.
   A name botocore knows is taken as is, so a definition in botocore's spelling still runs
   here (AWS would refuse it; the product never writes one).
4. Errors: AWS names a failed task `<Service>.<Name>Exception` with the Java class name
   (`Rds.DbSnapshotNotFoundException`; unmodeled errors such as throttling:
   `Rds.RdsException`); moto says `rds.DBSnapshotNotFoundFaultException`. The shim names
   them as AWS does.

5. Input as request: a Task without `Parameters` sends its effective input (after
   `InputPath`) as the API request on AWS; moto sends an empty request. The shim sends the
   effective input.

And a gap of moto's JSONPath: a definite path through an array index
(`$.DbSnapshots[0].Status`) came back as a one-element list, where AWS gives the value; a
filter that matches nothing (`$.results[?(@.error)]`) failed, where AWS gives `[]`. The shim
gives a definite path's value and an indefinite one's list of matches, as AWS does.

And one test hook, not a gap: a task whose request mentions a text routed in the JSON
file `$RDS_HANDOFF_STATES_ROUTES` (`{"<text>": <port>}`) is sent to `127.0.0.1:<port>`, a
test's fault proxy, instead of this server, so the proxy's holds, faults and records reach
the state machine's calls as they reach the agents': a terminal status, throttling, the
calls the execution role's policy is judged on.
"""

import copy
import datetime
import json
import os
import re
import threading

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_aws_sdk as aws_sdk,
)
from moto.stepfunctions.parser.asl.utils import json_path

_lock = threading.Lock()
_credentials = {}


def _endpoint(request=None):
    port = os.environ["MOTO_PORT"]
    try:
        with open(os.environ["RDS_HANDOFF_STATES_ROUTES"]) as f:
            routes = json.load(f)
    except (OSError, ValueError):
        routes = {}
    text = json.dumps(request)
    for mention, via in routes.items():
        if request is not None and mention in text:
            port = via
    return f"http://127.0.0.1:{port}"


def sfn_name(name):
    """AWS's spelling of a botocore member name: the Java 2.x member name, capitalized.

    Java lowercases a leading run of capitals, keeping the last one when a lowercase letter
    follows (`DBSnapshotIdentifier` -> `dbSnapshotIdentifier`); capitalized again that is
    `DbSnapshotIdentifier`. Inner acronyms stay (`SourceDBSnapshotIdentifier`, `MultiAZ`).
    """
    run = re.match(r"[A-Z]+", name)
    if not run or len(run.group()) == 1:
        return name
    n = len(run.group())
    if n < len(name) and name[n].islower():
        n -= 1
    lowered = name[:n].lower() + name[n:]
    return lowered[0].upper() + lowered[1:]


def error_name(service, class_name):
    """`Rds.DbSnapshotNotFoundException` for botocore's `DBSnapshotNotFoundFault`."""
    service = service[0].upper() + service[1:].lower()
    if class_name == "ClientError":
        return f"{service}.{service}Exception"
    base = re.sub(r"(Fault|Exception)$", "", class_name)
    words = re.findall(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z0-9]+|[A-Z]+", base)
    return f"{service}." + "".join(w[0].upper() + w[1:].lower() for w in words) + "Exception"


def _to_botocore(value, shape):
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        members = shape.members
        by_aws = {sfn_name(k): k for k in members}
        out = {}
        for key, item in value.items():
            real = key if key in members else by_aws.get(key, key)
            out[real] = _to_botocore(item, members.get(real))
        return out
    if shape.type_name == "list" and isinstance(value, list):
        return [_to_botocore(v, shape.member) for v in value]
    return value


def _to_aws(value, shape):
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if shape is None:
        return value
    if shape.type_name == "structure" and isinstance(value, dict):
        return {sfn_name(k): _to_aws(v, shape.members.get(k)) for k, v in value.items()}
    if shape.type_name == "list" and isinstance(value, list):
        return [_to_aws(v, shape.member) for v in value]
    return value


def _role_credentials(role_arn):
    with _lock:
        if role_arn not in _credentials:
            sts = boto3.client(
                "sts",
                endpoint_url=_endpoint(),
                region_name="us-east-1",
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
            c = sts.assume_role(RoleArn=role_arn, RoleSessionName="states")["Credentials"]
            _credentials[role_arn] = c
        return _credentials[role_arn]


def _client(service, region, role_arn, request):
    c = _role_credentials(role_arn)
    client = boto3.client(
        service,
        endpoint_url=_endpoint(request),
        region_name=region,
        aws_access_key_id=c["AccessKeyId"],
        aws_secret_access_key=c["SecretAccessKey"],
        aws_session_token=c["SessionToken"],
        config=Config(retries={"max_attempts": 0, "total_max_attempts": 1}),
    )
    return client


def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, state_credentials):
    service = self._get_boto_service_name()
    action = self._get_boto_service_action()
    role_arn = env.aws_execution_details.role_arn
    if self.parargs is None and not normalised_parameters and isinstance(env.stack[-1], dict):
        normalised_parameters = copy.deepcopy(env.stack[-1])
    client = _client(service, resource_runtime_part.region, role_arn, normalised_parameters)
    operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[action])
    params = _to_botocore(normalised_parameters, operation.input_shape)
    response = getattr(client, action)(**params) or {}
    response.pop("ResponseMetadata", None)
    env.stack.append(_to_aws(response, operation.output_shape))


_original_from_error = aws_sdk.StateTaskServiceAwsSdk._from_error


def _from_error(self, env, ex):
    if isinstance(ex, ClientError):
        name = error_name(self._get_boto_service_name(), ex.__class__.__name__)
        cause = f"{ex.response['Error'].get('Message', '')} (Service: {name.split('.')[0]}, Status Code: {ex.response['ResponseMetadata'].get('HTTPStatusCode')})"
        return self._get_task_failure_event(env=env, error=name, cause=cause)
    return _original_from_error(self, env, ex)


def _extract_json_as_aws(path, data):
    # Runs as json_path.extract_json (its code is swapped in below, since many modules
    # imported the function by name): only that module's names are used.
    matches = parse(path).find(data)
    definite = not any(mark in path for mark in ("*", ":", "?(", ".."))
    if not definite:
        return [match.value for match in matches]
    if not matches:
        raise NoSuchJsonPathError(json_path=path, data=data)
    return matches[0].value


aws_sdk.StateTaskServiceAwsSdk._eval_service_task = _eval_service_task
aws_sdk.StateTaskServiceAwsSdk._from_error = _from_error
json_path.extract_json.__code__ = _extract_json_as_aws.__code__

