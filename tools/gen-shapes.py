#!/usr/bin/env python3
"""Generate crates/ferrodyn-protocol/src/shapes/generated.rs from the botocore service models.

Reads the DynamoDB and DynamoDB Streams input shapes (botocore/data/dynamodb*/2012-08-10/
service-2.json[.gz]) and writes static Rust tables consumed by `ferrodyn_protocol::shapes`.
The output is committed, so building Ferrodyn never needs botocore; rerun this script (and
commit the result) when upgrading the model:

    pip install botocore && python3 tools/gen-shapes.py

The client model differs from what the DynamoDB service enforces in a few places. Those
differences are listed in the OVERRIDES section below; every entry records behaviour observed
from the real service, not a preference.
"""

import gzip
import json
import os
import sys

OUT = os.path.join(
    os.path.dirname(os.path.abspath(__file__)),
    "..", "crates", "ferrodyn-protocol", "src", "shapes", "generated.rs",
)

# ---------------------------------------------------------------------------------------------
# OVERRIDES (observed service behaviour that the client model does not state)
# ---------------------------------------------------------------------------------------------

# Order in which the service lists enum values in "Member must satisfy enum value set: [...]".
# The model's order differs; shapes not listed keep the model's order.
ENUM_ORDER = {
    "KeyType": ["HASH", "RANGE"],
    "ScalarAttributeType": ["B", "N", "S"],
    "Select": ["SPECIFIC_ATTRIBUTES", "COUNT", "ALL_ATTRIBUTES", "ALL_PROJECTED_ATTRIBUTES"],
    "ReturnConsumedCapacity": ["INDEXES", "TOTAL", "NONE"],
    "ConditionalOperator": ["OR", "AND"],
    "ReturnItemCollectionMetrics": ["SIZE", "NONE"],
    "ReturnValue": ["ALL_NEW", "UPDATED_OLD", "ALL_OLD", "NONE", "UPDATED_NEW"],
    "BillingMode": ["PROVISIONED", "PAY_PER_REQUEST"],
    "ProjectionType": ["ALL", "INCLUDE", "KEYS_ONLY"],
    "ComparisonOperator": ["IN", "NULL", "BETWEEN", "LT", "NOT_CONTAINS", "EQ", "GT",
                           "NOT_NULL", "NE", "LE", "BEGINS_WITH", "GE", "CONTAINS"],
}

# Order in which the service reports violations of a structure's members. Members not listed
# follow in model order.
MEMBER_ORDER = {
    "CreateTableInput": ["AttributeDefinitions", "TableName", "BillingMode",
                         "ProvisionedThroughput", "KeySchema", "LocalSecondaryIndexes",
                         "GlobalSecondaryIndexes"],
    "ProvisionedThroughput": ["WriteCapacityUnits", "ReadCapacityUnits"],
    "Projection": ["ProjectionType", "NonKeyAttributes"],
    "PutItemInput": ["ReturnConsumedCapacity", "TableName", "Item", "ConditionalOperator",
                     "Expected", "ReturnValues", "ReturnItemCollectionMetrics",
                     "ConditionExpression", "ExpressionAttributeValues",
                     "ExpressionAttributeNames"],
    "DeleteItemInput": ["ReturnConsumedCapacity", "TableName", "ReturnValues",
                        "ReturnItemCollectionMetrics", "Key", "ConditionalOperator", "Expected",
                        "ConditionExpression", "ExpressionAttributeValues",
                        "ExpressionAttributeNames"],
    "UpdateItemInput": ["ReturnConsumedCapacity", "TableName", "ReturnItemCollectionMetrics",
                        "ReturnValues", "Key", "ConditionalOperator", "Expected",
                        "AttributeUpdates", "ConditionExpression", "UpdateExpression",
                        "ExpressionAttributeValues", "ExpressionAttributeNames"],
    "GetItemInput": ["ReturnConsumedCapacity", "AttributesToGet", "TableName", "Key",
                     "ConsistentRead", "ProjectionExpression", "ExpressionAttributeNames"],
    "QueryInput": ["Select", "IndexName", "ReturnConsumedCapacity", "QueryFilter", "TableName",
                   "ConditionalOperator", "AttributesToGet", "Limit", "KeyConditions",
                   "ExclusiveStartKey", "ConsistentRead", "ScanIndexForward",
                   "KeyConditionExpression", "FilterExpression", "ProjectionExpression",
                   "ExpressionAttributeValues", "ExpressionAttributeNames"],
    "ScanInput": ["Select", "IndexName", "TotalSegments", "ReturnConsumedCapacity", "TableName",
                  "ConditionalOperator", "ScanFilter", "Segment", "Limit", "AttributesToGet",
                  "ExclusiveStartKey", "FilterExpression", "ProjectionExpression",
                  "ExpressionAttributeValues", "ExpressionAttributeNames"],
    "BatchGetItemInput": ["ReturnConsumedCapacity", "RequestItems"],
    "BatchWriteItemInput": ["ReturnConsumedCapacity", "ReturnItemCollectionMetrics",
                            "RequestItems"],
    "WriteRequest": ["DeleteRequest", "PutRequest"],
    "UpdateTableInput": ["TableName", "ProvisionedThroughput", "BillingMode",
                         "GlobalSecondaryIndexUpdates"],
    "GlobalSecondaryIndexUpdate": ["Update", "Create", "Delete"],
    "CreateGlobalSecondaryIndexAction": ["Projection", "IndexName", "ProvisionedThroughput",
                                         "KeySchema"],
    "ListTablesInput": ["Limit", "ExclusiveStartTableName"],
}

# Members the service requires although the client model does not.
EXTRA_REQUIRED = {
    "CreateTableInput": ["AttributeDefinitions", "KeySchema"],
}

# Constraints the service applies to one member's value, beyond its shared shape's. The model's
# KeySchema lost its upper bound when indexes gained multi-attribute keys; tables and local
# secondary indexes still take at most two key elements.
MEMBER_PATCH = {
    ("CreateTableInput", "KeySchema"): {"max": 2},
    ("LocalSecondaryIndex", "KeySchema"): {"max": 2},
}

# Members whose own constraint violations the service reports in its newer style: no value,
# and the path spelled with the wire (PascalCase) member names.
NEW_STYLE = {
    ("QueryInput", "Limit"),
    ("KeysAndAttributes", "Keys"),
}

# Pattern strings of the model, mapped to the hand-written matcher that implements them.
PATTERNS = {
    r"\p{Print}+": "PrintPlus",
    "[\\u0020-\\uD7FF\\uE000-\\uFFFD\\uD800\\uDC00-\\uDBFF\\uDFFF\\r\\n\\t]*": "XmlText",
    "[a-zA-Z0-9_.-]+": "TableName",
    r"^[^\$]+$": "NoDollar",
    r"[A-Za-z0-9][A-Za-z0-9\-\_\.]{0,126}[A-Za-z0-9]": "ContributorInsightsRule",
    r"[,;:|\t ]": "CsvDelimiter",
    r"[\x20-\x21\x23-\x2B\x2D-\x7E]*": "CsvHeader",
    "([0-9a-f]{16})+": "HexBlocks16",
    r"^[a-z0-9A-Z]+[\.\-\w]*[a-z0-9A-Z]+$": "S3Bucket",
    "[0-9]{12}": "TwelveDigits",
    "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}": "Uuid",
}

# Shapes the constraint pass never descends into: attribute values are validated semantically by
# the codec (nesting depth, set contents, name lengths), and their recursion (M, L) would otherwise
# make the constraint pass unbounded. Their JSON types are still checked by the type pass.
OPAQUE = {"AttributeValue"}

JAVA_PACKAGE = {
    "dynamodb": "com.amazonaws.dynamodb.v20120810",
    "dynamodbstreams": "com.amazonaws.dynamodb.streams.v20120810",
}

KIND = {
    "structure": "Structure", "list": "List", "map": "Map", "string": "String",
    "integer": "Integer", "long": "Long", "double": "Double", "boolean": "Boolean",
    "blob": "Blob", "timestamp": "Timestamp",
}


def load_model(api):
    try:
        import botocore
    except ImportError:
        sys.exit("botocore is required: pip install botocore")
    base = os.path.join(os.path.dirname(botocore.__file__), "data", api, "2012-08-10")
    path = os.path.join(base, "service-2.json")
    if os.path.exists(path):
        with open(path) as f:
            return json.load(f), botocore.__version__
    with gzip.open(path + ".gz") as f:
        return json.load(f), botocore.__version__


def lower_first(s):
    return s[0].lower() + s[1:]


def rust_str(s):
    return json.dumps(s, ensure_ascii=False)


class Gen:
    def __init__(self):
        self.shapes = []  # list of dicts, index = id
        self.index = {}  # (api, name) -> id

    def add_api(self, api, model):
        shapes = model["shapes"]
        pkg = JAVA_PACKAGE[api]

        def shape_id(name, patch=None):
            key = (api, name, json.dumps(patch, sort_keys=True)) if patch else (api, name)
            if key in self.index:
                return self.index[key]
            sid = len(self.shapes)
            self.index[key] = sid
            entry = {"api": api, "name": name}
            self.shapes.append(entry)
            s = dict(shapes[name], **(patch or {}))
            t = s["type"]
            entry["kind"] = KIND[t]
            entry["min"] = s.get("min")
            entry["max"] = s.get("max")
            entry["pattern"] = None
            if "pattern" in s:
                if s["pattern"] not in PATTERNS:
                    sys.exit(f"unknown pattern {s['pattern']!r} on {name}: add a matcher")
                entry["pattern"] = PATTERNS[s["pattern"]]
            values = s.get("enum", [])
            if name in ENUM_ORDER and api == "dynamodb":
                if sorted(ENUM_ORDER[name]) == sorted(values):
                    values = ENUM_ORDER[name]
                else:
                    print(f"warning: enum {name} changed in the model; keeping model order",
                          file=sys.stderr)
            entry["enum"] = values
            entry["table_arn"] = api == "dynamodb" and name == "TableArn"
            if t == "structure":
                required = set(s.get("required", [])) | set(EXTRA_REQUIRED.get(name, []))
                members = []
                for mname, m in s["members"].items():
                    members.append({
                        "name": mname,
                        "shape": shape_id(m["shape"], MEMBER_PATCH.get((name, mname))),
                        "required": mname in required,
                        "new_style": (name, mname) in NEW_STYLE,
                    })
                entry["members"] = members
                names = [m["name"] for m in members]
                order = [n for n in MEMBER_ORDER.get(name, []) if n in names]
                order += [n for n in names if n not in order]
                entry["report_order"] = [names.index(n) for n in order]
                entry["java"] = f"{pkg}.{name}"
            elif t == "list":
                entry["member"] = shape_id(s["member"]["shape"])
            elif t == "map":
                entry["key"] = shape_id(s["key"]["shape"])
                entry["value"] = shape_id(s["value"]["shape"])
            return sid

        ops = {}
        for op, o in model["operations"].items():
            if "input" in o:
                ops[op] = shape_id(o["input"]["shape"])
        return ops

    def java_type(self, sid):
        """The Java type name the service's deserializer uses for a shape."""
        e = self.shapes[sid]
        k = e["kind"]
        if k == "Structure":
            return e["java"]
        if k == "List":
            return f"java.util.List<{self.java_type(e['member'])}>"
        if k == "Map":
            return f"java.util.Map<java.lang.String, {self.java_type(e['value'])}>"
        return {
            "String": "java.lang.String", "Integer": "java.lang.Integer",
            "Long": "java.lang.Long", "Double": "java.lang.Double",
            "Boolean": "java.lang.Boolean", "Blob": "java.nio.ByteBuffer",
            "Timestamp": "java.util.Date",
        }[k]

    def own_constraints(self, e):
        return (e["min"] is not None or e["max"] is not None or e["pattern"] is not None
                or bool(e["enum"]) or e["table_arn"])

    def compute_checked(self):
        """checked = validating a value of this shape may report a constraint violation."""
        n = len(self.shapes)
        checked = [self.own_constraints(e) for e in self.shapes]
        opaque = [e["name"] in OPAQUE for e in self.shapes]
        changed = True
        while changed:
            changed = False
            for i, e in enumerate(self.shapes):
                if checked[i] or opaque[i]:
                    continue
                k = e["kind"]
                c = False
                if k == "Structure":
                    c = any(m["required"] or checked[m["shape"]] for m in e["members"])
                elif k == "List":
                    c = checked[e["member"]]
                elif k == "Map":
                    c = checked[e["key"]] or checked[e["value"]]
                if c:
                    checked[i] = True
                    changed = True
        for i, e in enumerate(self.shapes):
            e["checked"] = checked[i] and not opaque[i]
        # The constraint pass recurses over checked shapes only; it must be acyclic so that its
        # recursion depth is bounded by the model, whatever the request's nesting.
        state = [0] * n

        def visit(i, trail):
            if not self.shapes[i]["checked"]:
                return
            if state[i] == 1:
                sys.exit("cycle among checked shapes: " +
                         " -> ".join(self.shapes[j]["name"] for j in trail + [i]))
            if state[i] == 2:
                return
            state[i] = 1
            e = self.shapes[i]
            kids = []
            if e["kind"] == "Structure":
                kids = [m["shape"] for m in e["members"]]
            elif e["kind"] == "List":
                kids = [e["member"]]
            elif e["kind"] == "Map":
                kids = [e["key"], e["value"]]
            for k in kids:
                visit(k, trail + [i])
            state[i] = 2

        for i in range(n):
            visit(i, [])

    def emit(self, ops_by_api, versions):
        out = []
        w = out.append
        w("// @generated by tools/gen-shapes.py from botocore " + versions + ". Do not edit.")
        w("//! Input shapes of the DynamoDB and DynamoDB Streams APIs, as static tables.")
        w("//!")
        w("//! Generated from the botocore service models plus the service-behaviour overrides")
        w("//! listed in `tools/gen-shapes.py`. Invariant: every shape index refers into `SHAPES`,")
        w("//! and shapes with `checked == true` form an acyclic graph.")
        w("")
        w("use super::{Kind, Member, Pattern, Shape};")
        w("")
        w(f"pub(super) static SHAPES: [Shape; {len(self.shapes)}] = [")
        for i, e in enumerate(self.shapes):
            k = e["kind"]
            if k == "Structure":
                ms = ", ".join(
                    "Member { name: %s, lower: %s, shape: %d, required: %s, new_style: %s }" % (
                        rust_str(m["name"]), rust_str(lower_first(m["name"])), m["shape"],
                        "true" if m["required"] else "false",
                        "true" if m["new_style"] else "false")
                    for m in e["members"])
                order = ", ".join(str(x) for x in e["report_order"])
                kind = f"Kind::Structure {{ members: &[{ms}], report_order: &[{order}] }}"
            elif k == "List":
                kind = f"Kind::List {{ member: {e['member']} }}"
            elif k == "Map":
                kind = f"Kind::Map {{ key: {e['key']}, value: {e['value']} }}"
            else:
                kind = f"Kind::{k}"
            opt = lambda v: "None" if v is None else f"Some({v})"
            pat = "None" if e["pattern"] is None else f"Some(Pattern::{e['pattern']})"
            enums = ", ".join(rust_str(v) for v in e["enum"])
            w(f"    // {i}: {e['api']}/{e['name']}")
            w("    Shape {")
            w(f"        name: {rust_str(e['name'])},")
            w(f"        java_type: {rust_str(self.java_type(i))},")
            w(f"        kind: {kind},")
            w(f"        min: {opt(e['min'])},")
            w(f"        max: {opt(e['max'])},")
            w(f"        pattern: {pat},")
            w(f"        enum_values: &[{enums}],")
            w(f"        table_arn: {'true' if e['table_arn'] else 'false'},")
            w(f"        checked: {'true' if e['checked'] else 'false'},")
            w("    },")
        w("];")
        w("")
        for api, const in (("dynamodb", "DYNAMODB_OPS"), ("dynamodbstreams", "STREAMS_OPS")):
            ops = ops_by_api[api]
            w("/// (operation name, input shape index), sorted by name for binary search.")
            w(f"pub(super) static {const}: [(&str, u16); {len(ops)}] = [")
            for op in sorted(ops):
                w(f"    ({rust_str(op)}, {ops[op]}),")
            w("];")
            w("")
        # The table name shapes the two-tier TableArn check falls back to.
        tn = self.index[("dynamodb", "TableName")]
        w("/// Index of the DynamoDB `TableName` shape (3..255, `[a-zA-Z0-9_.-]+`).")
        w(f"pub(super) const TABLE_NAME_SHAPE: u16 = {tn};")
        return "\n".join(out) + "\n"


def main():
    gen = Gen()
    ops_by_api = {}
    versions = set()
    for api in ("dynamodb", "dynamodbstreams"):
        model, version = load_model(api)
        versions.add(version)
        ops_by_api[api] = gen.add_api(api, model)
    # TableName is reached from DynamoDB only through a few inputs; make sure it has an index.
    if ("dynamodb", "TableName") not in gen.index:
        sys.exit("the DynamoDB model has no TableName shape")
    if len(gen.shapes) > 65535:
        sys.exit("too many shapes for u16 indices")
    gen.compute_checked()
    text = gen.emit(ops_by_api, ", ".join(sorted(versions)))
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        f.write(text)
    print(f"wrote {os.path.relpath(OUT)}: {len(gen.shapes)} shapes")


if __name__ == "__main__":
    main()
