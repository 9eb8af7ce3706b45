"""A small JSON Schema (draft-07) validator: exactly the subset
docs/janus-gdb.schema.json uses, stdlib only.

Supported keywords: type (a name or a list of names), properties, required,
additionalProperties (false or a schema), items (one schema), enum, $ref
(only ``#/definitions/NAME``), anyOf, oneOf, minimum, and the annotations
$schema, $id, title, description, definitions (ignored while checking).
Any other keyword is an error, so the schema cannot silently use more than
this checks.

    errors = validate(document, schema)   # [] when valid
"""

import json
import sys

ANNOTATIONS = ("$schema", "$id", "title", "description", "definitions")
KEYWORDS = ("type", "properties", "required", "additionalProperties", "items", "enum",
            "$ref", "anyOf", "oneOf", "minimum") + ANNOTATIONS
MAX_ERRORS = 50


class SchemaError(Exception):
    """The schema itself uses something this validator does not implement."""


def _is_type(value, name):
    if name == "null":
        return value is None
    if name == "boolean":
        return isinstance(value, bool)
    if name == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if name == "number":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    if name == "string":
        return isinstance(value, str)
    if name == "array":
        return isinstance(value, list)
    if name == "object":
        return isinstance(value, dict)
    raise SchemaError("unknown type %r" % name)


def _resolve(ref, root):
    prefix = "#/definitions/"
    if not ref.startswith(prefix):
        raise SchemaError("only #/definitions/NAME references are supported: %r" % ref)
    name = ref[len(prefix):]
    try:
        return root["definitions"][name]
    except KeyError:
        raise SchemaError("unresolved reference %r" % ref)


def _same(a, b):
    """JSON equality: true is not 1."""
    return type(a) is type(b) and a == b or (
        _is_type(a, "number") and _is_type(b, "number") and a == b)


def _check(value, schema, root, path, errors):
    if not isinstance(schema, dict):
        raise SchemaError("schema at %s is not an object" % path)
    for key in schema:
        if key not in KEYWORDS:
            raise SchemaError("unsupported keyword %r at %s" % (key, path))
    if "$ref" in schema:
        _check(value, _resolve(schema["$ref"], root), root, path, errors)
    if "type" in schema:
        names = schema["type"] if isinstance(schema["type"], list) else [schema["type"]]
        if not any(_is_type(value, n) for n in names):
            errors.append("%s: %s is not of type %s" % (path, _short(value), "/".join(names)))
            return
    if "enum" in schema and not any(_same(value, e) for e in schema["enum"]):
        errors.append("%s: %s is not one of %s" % (path, _short(value), schema["enum"]))
    if "minimum" in schema and _is_type(value, "number") and value < schema["minimum"]:
        errors.append("%s: %s is less than the minimum %s" % (path, value, schema["minimum"]))
    for word in ("anyOf", "oneOf"):
        if word in schema:
            passed = 0
            for sub in schema[word]:
                sub_errors = []
                _check(value, sub, root, path, sub_errors)
                passed += not sub_errors
            if passed == 0 or (word == "oneOf" and passed > 1):
                errors.append("%s: %s matches %d of the %s schemas" % (
                    path, _short(value), passed, word))
    if isinstance(value, dict):
        props = schema.get("properties", {})
        for key in schema.get("required", ()):
            if key not in value:
                errors.append("%s: required key %r is missing" % (path, key))
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            sub = "%s.%s" % (path, key)
            if key in props:
                _check(item, props[key], root, sub, errors)
            elif extra is False:
                errors.append("%s: key %r is not allowed" % (path, key))
            elif isinstance(extra, dict):
                _check(item, extra, root, sub, errors)
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            _check(item, schema["items"], root, "%s[%d]" % (path, i), errors)
            if len(errors) > MAX_ERRORS:
                return


def _short(value):
    text = json.dumps(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(document, schema):
    """A list of error messages (``$.path: what``); empty when DOCUMENT is valid."""
    errors = []
    _check(document, schema, schema, "$", errors)
    return errors


def check_schema(schema):
    """Walk SCHEMA once with no document: raises SchemaError on unsupported keywords."""
    def walk(node, path):
        if isinstance(node, dict):
            for key in node:
                if key not in KEYWORDS:
                    raise SchemaError("unsupported keyword %r at %s" % (key, path))
            if "$ref" in node:
                _resolve(node["$ref"], schema)
            for key in ("properties", "definitions"):
                for name, sub in node.get(key, {}).items():
                    walk(sub, "%s.%s.%s" % (path, key, name))
            for key in ("items", "additionalProperties"):
                if isinstance(node.get(key), dict):
                    walk(node[key], "%s.%s" % (path, key))
            for key in ("anyOf", "oneOf"):
                for i, sub in enumerate(node.get(key, ())):
                    walk(sub, "%s.%s[%d]" % (path, key, i))
        else:
            raise SchemaError("schema at %s is not an object" % path)
    walk(schema, "$")


def main(argv):
    """``python3 schema_check.py SCHEMA.json DOC.json``: exit 1 and list errors if invalid."""
    with open(argv[1]) as f:
        schema = json.load(f)
    with open(argv[2]) as f:
        doc = json.load(f)
    check_schema(schema)
    errors = validate(doc, schema)
    for e in errors:
        print(e)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
