"""Closes moto 5.2's gaps in running Step Functions AWS SDK tasks (DOMAIN.md §10).

With `{"stepfunctions": {"execute_state_machine": true}}` moto executes state machines, but
an `arn:aws:states:::aws-sdk:*` task differs from AWS in five ways, each closed here (5.
says where the shim keeps moto's behaviour on purpose):

1. Account: moto sends every task with fixed credentials, so it acts in moto's default
   account. AWS acts as the execution role: the shim assumes the execution's role (on this
   server's STS) and sends the task with those credentials, in that role's account.
2. Endpoint: moto sends tasks to `localhost:$MOTO_PORT`; the shim sends them to this server.
3. Casing: AWS spells parameters and results as the AWS SDK for Java 2.x names members,
   capitalized (`DbSnapshotIdentifier`, `SourceDBSnapshotIdentifier`, `MultiAZ`; results
   `DbSnapshots[0].Status`); moto passes parameters to botocore as given and returns
   botocore's names and Python datetimes. The shim maps parameters to botocore's names
   through the service model, and results back to AWS's, timestamps as ISO 8601 text.
   A name only botocore spells so (`DBInstanceIdentifier` where AWS spells
   `DbInstanceIdentifier`) is refused, as AWS refuses it: in a definition's `Parameters`,
   CreateStateMachine and UpdateStateMachine answer `InvalidDefinition` ("SCHEMA_VALIDATION_FAILED:
   The field ... is not supported by Step Functions", as AWS words it); in a value taken at
   run time (a `.$` path to an object), the task fails with `States.Runtime`, a stand-in:
   AWS documents neither a check there nor what becomes of a field it does not know. So every
   test that runs a state machine also shows that the product sends AWS's spelling only.
4. Errors: AWS names a failed task `<Service>.<Name>Exception` with the Java class name
   (`Rds.DbSnapshotNotFoundException`; unmodeled errors such as throttling:
   `Rds.RdsException`); moto says `rds.DBSnapshotNotFoundFaultException`. The shim names
   them as AWS does.

5. Input as request: none. A Task without `Parameters` sends an empty request here, as
   moto and LocalStack do; AWS documents parameters only through `Parameters` (DOMAIN.md
   §18), so the product states every parameter and a Task that forgot to fails its tests.

6. Execution role: AWS's Step Functions must be able to assume the state machine's role:
   the role exists in its account's IAM and its trust policy lets `states.amazonaws.com` (or
   the regional `states.<region>.amazonaws.com`) call sts:AssumeRole, its conditions on
   `aws:SourceAccount` and `aws:SourceArn` (the state machine's ARN) met (StringEquals,
   StringLike, ArnEquals, ArnLike; any other condition is taken as not met) and no statement
   denying it. moto never looks. CreateStateMachine and UpdateStateMachine (with a role)
   answer `AccessDeniedException`, "Neither the global service principal states.amazonaws.com,
   nor the regional one is authorized to assume the provided role.", as AWS does; a task of an
   execution whose role no longer trusts Step Functions (deleted or changed since) fails with
   `States.Runtime` and the same cause, a stand-in: AWS documents no error for that case.

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

import datetime
import fnmatch
import json
import os
import re
import threading
import urllib.parse

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

from moto.core.exceptions import AWSError
from moto.iam.models import iam_backends
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.api import HistoryEventType, TaskFailedEventDetails
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import FailureEvent
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import (
    StatesErrorName,
)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import (
    StatesErrorNameType,
)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails

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
    if not _trusts_states(role_arn, _machine_of(env)):
        raise _TaskRefused(_CANNOT_ASSUME)
    client = _client(service, resource_runtime_part.region, role_arn, normalised_parameters)
    operation = client.meta.service_model.operation_model(client.meta.method_to_api_mapping[action])
    botocore_only = _botocore_only(normalised_parameters, operation.input_shape)
    if botocore_only:
        raise _TaskRefused(_unsupported(botocore_only))
    params = _to_botocore(normalised_parameters, operation.input_shape)
    response = getattr(client, action)(**params) or {}
    response.pop("ResponseMetadata", None)
    env.stack.append(_to_aws(response, operation.output_shape))


_original_from_error = aws_sdk.StateTaskServiceAwsSdk._from_error


def _from_error(self, env, ex):
    if isinstance(ex, _TaskRefused):
        runtime = StatesErrorNameType.StatesRuntime
        details = TaskFailedEventDetails(
            resource=self._get_sfn_resource(),
            resourceType=self._get_sfn_resource_type(),
            error=runtime.to_name(),
            cause=ex.cause,
        )
        return FailureEvent(
            env=env,
            error_name=StatesErrorName(typ=runtime),
            event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=details),
        )
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


class _TaskRefused(Exception):
    """A task AWS would not run: fails it with `States.Runtime` and `cause`."""

    def __init__(self, cause):
        super().__init__(cause)
        self.cause = cause


def _unsupported(field):
    return f'The field "{field}" is not supported by Step Functions'


def _botocore_only(value, shape, path=""):
    """The first member of `value` spelled as botocore names it where AWS spells it otherwise
    (`DBInstanceIdentifier`, not `DbInstanceIdentifier`), nested ones as `A.B`; or None."""
    if shape is None:
        return None
    if shape.type_name == "structure" and isinstance(value, dict):
        by_aws = {sfn_name(k): k for k in shape.members}
        for key, item in value.items():
            name = key[:-2] if key.endswith(".$") else key
            if name in shape.members and sfn_name(name) != name:
                return path + name
            real = name if name in shape.members else by_aws.get(name)
            found = _botocore_only(item, shape.members.get(real), f"{path}{name}.")
            if found:
                return found
    if shape.type_name == "list" and isinstance(value, list):
        for item in value:
            found = _botocore_only(item, shape.member, path)
            if found:
                return found
    return None


_session = botocore.session.get_session()


def _input_shape(resource):
    """The request shape of an `arn:aws:states:::aws-sdk:<service>:<action>` task, or None."""
    parts = resource.split(":")
    if len(parts) < 8 or parts[5] != "aws-sdk":
        return None
    service, action = parts[6], parts[7].split(".")[0]
    try:
        model = _session.get_service_model({"sfn": "stepfunctions"}.get(service, service))
        return model.operation_model(action[0].upper() + action[1:]).input_shape
    except Exception:
        return None


def _tasks(states, path):
    for name, state in (states or {}).items():
        here = f"{path}/{name}"
        if not isinstance(state, dict):
            continue
        if state.get("Type") == "Task":
            yield here, state
        for inner in ("Iterator", "ItemProcessor"):
            if isinstance(state.get(inner), dict):
                yield from _tasks(state[inner].get("States"), f"{here}/{inner}/States")
        for i, branch in enumerate(state.get("Branches") or []):
            yield from _tasks(branch.get("States"), f"{here}/Branches[{i}]/States")


def _refuse_botocore_spellings(definition):
    try:
        document = json.loads(definition)
    except (TypeError, ValueError):
        return  # moto refuses what is not JSON
    for where, task in _tasks(document.get("States"), "/States"):
        parameters = task.get("Parameters")
        if not isinstance(parameters, dict):
            continue
        found = _botocore_only(parameters, _input_shape(str(task.get("Resource", ""))))
        if found:
            raise InvalidDefinitionError(
                "Invalid State Machine Definition: 'SCHEMA_VALIDATION_FAILED: "
                f"{_unsupported(found)} at {where}/Parameters'"
            )


_CANNOT_ASSUME = (
    "Neither the global service principal states.amazonaws.com, nor the regional one is "
    "authorized to assume the provided role."
)


class AccessDeniedException(AWSError):
    TYPE = "AccessDeniedException"
    STATUS = 400


class InvalidDefinitionError(AWSError):
    # moto's own InvalidDefinition reaches the client without its code.
    TYPE = "InvalidDefinition"
    STATUS = 400


def _listed(value):
    return value if isinstance(value, list) else [value]


def _conditions_met(block, context):
    for operator, tests in (block or {}).items():
        if operator not in ("StringEquals", "StringLike", "ArnEquals", "ArnLike"):
            return False
        for key, wanted in tests.items():
            have = context.get(key.lower())
            if have is None:
                return False
            like = operator.endswith("Like")
            if not any(
                fnmatch.fnmatchcase(have, w) if like else have == w for w in _listed(wanted)
            ):
                return False
    return True


def _trusts_states(role_arn, machine_arn):
    """Whether Step Functions may assume `role_arn` for the state machine `machine_arn`."""
    match = re.fullmatch(r"arn:([^:]+):iam::(\d{12}):role/.+", role_arn or "")
    if not match:
        return False
    partition, account = match.groups()
    try:
        document = iam_backends[account][partition].get_role_by_arn(role_arn)
        document = document.assume_role_policy_document
        try:
            policy = json.loads(document)
        except ValueError:
            policy = json.loads(urllib.parse.unquote(document))
    except Exception:
        return False  # no such role
    parts = machine_arn.split(":")
    region = parts[3] if len(parts) > 4 else ""
    context = {
        "aws:sourcearn": machine_arn,
        "aws:sourceaccount": parts[4] if len(parts) > 4 else "",
    }
    services = {"states.amazonaws.com", f"states.{region}.amazonaws.com"}
    allowed = False
    for statement in _listed(policy.get("Statement", [])):
        principal = statement.get("Principal")
        if not isinstance(principal, dict):
            continue
        if not services.intersection(_listed(principal.get("Service", []))):
            continue
        actions = [a.lower() for a in _listed(statement.get("Action", []))]
        if not any(fnmatch.fnmatchcase("sts:assumerole", a) for a in actions):
            continue
        if not _conditions_met(statement.get("Condition"), context):
            continue
        if statement.get("Effect") == "Deny":
            return False
        allowed = allowed or statement.get("Effect") == "Allow"
    return allowed


def _machine_of(env):
    """The ARN of the state machine an execution runs (the trust policy's aws:SourceArn)."""
    try:
        arn = env.states.context_object.context_object_data["StateMachine"]["Id"]
    except (AttributeError, KeyError, TypeError):
        return ""
    # A version's ARN (`…:stateMachine:<name>:<version>`) names the same state machine.
    parts = arn.split(":")
    return ":".join(parts[:7]) if len(parts) > 7 else arn


def _machine_arn(backend, name):
    return f"arn:aws:states:{backend.region_name}:{backend.account_id}:stateMachine:{name}"


_original_create_state_machine = StepFunctionBackend.create_state_machine
_original_update_state_machine = StepFunctionBackend.update_state_machine


def create_state_machine(self, name, definition, roleArn, *args, **kwargs):
    self._validate_role_arn(roleArn)
    _refuse_botocore_spellings(definition)
    if not _trusts_states(roleArn, _machine_arn(self, name)):
        raise AccessDeniedException(_CANNOT_ASSUME)
    return _original_create_state_machine(self, name, definition, roleArn, *args, **kwargs)


def update_state_machine(self, arn, definition=None, role_arn=None, *args, **kwargs):
    if definition is not None:
        _refuse_botocore_spellings(definition)
    if role_arn is not None:
        self._validate_role_arn(role_arn)
        if not _trusts_states(role_arn, arn):
            raise AccessDeniedException(_CANNOT_ASSUME)
    return _original_update_state_machine(self, arn, definition, role_arn, *args, **kwargs)


StepFunctionBackend.create_state_machine = create_state_machine
StepFunctionBackend.update_state_machine = update_state_machine
