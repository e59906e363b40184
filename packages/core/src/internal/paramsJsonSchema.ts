/**
 * The params part of the workflow file's JSON Schema (`Workflow.jsonSchema`): each built-in type's
 * params (`Params.builtins`) as `Workflow.decode` checks them, custom types' params left open, and
 * where references and secrets may stand.
 *
 * Written by hand around `Schema.toJsonSchemaDocument`: the conversion describes a schema, not the
 * decoder's leniency for references (`Params.problem` leaves a value read through a reference to the
 * handler), so each value position of a converted params schema is widened here to what the decoder
 * accepts there.
 */
import * as Schema from "effect/Schema"
import * as Params from "../Params.ts"

type JsonSchema = { readonly [keyword: string]: unknown }

const def = (name: string): JsonSchema => ({ $ref: `#/$defs/${name}` })

// The paths `Reference.parse` accepts (it also refuses a block id or input key made of digits only).
const referencePath =
  "^(?:(?:blocks\\.[^.]+\\.output|input\\.[^.]+|vars\\.[^.]+|(?:loop|parallel)\\.item)(?:\\.[^.]+)*|(?:loop|parallel)\\.index)$"

const secret = Schema.toJsonSchemaDocument(Params.Secret).schema
const secretText = JSON.stringify(secret)

const definitions: { readonly [name: string]: JsonSchema } = {
  Reference: {
    type: "object",
    properties: { $ref: { type: "string", pattern: referencePath } },
    required: ["$ref"],
    additionalProperties: false,
    description: "A reference, read when the block runs: {\"$ref\": \"<path>\"} (blocks.<id>.output..., input.<key>..., vars.<name>..., loop.index, loop.item..., parallel.index, parallel.item...)."
  },
  Secret: secret,
  HasReference: {
    anyOf: [
      { type: "object", required: ["$ref"] },
      { type: "array", contains: def("HasReference") },
      { type: "object", not: { additionalProperties: { not: def("HasReference") } } }
    ],
    description: "A value that is or holds a reference: where a param expects another JSON type, it is checked when the block runs."
  },
  Value: {
    if: { type: "object", required: ["$ref"] },
    then: def("Reference"),
    else: { not: { type: "object", required: ["$secret"] }, items: def("Value"), additionalProperties: def("Value") },
    description: "A param value: any JSON whose references are well-formed and that holds no secret (only an http block reads secrets)."
  },
  SecretValue: {
    if: { type: "object", required: ["$ref"] },
    then: def("Reference"),
    else: {
      if: { type: "object", required: ["$secret"] },
      then: def("Secret"),
      else: { items: def("SecretValue"), additionalProperties: def("SecretValue") }
    },
    description: "A value of an http block's url, query, headers, auth, json or text: any JSON whose references and secrets are well-formed."
  }
}

// The JSON types a converted schema accepts at its top, or `undefined` for any.
const typesOf = (schema: JsonSchema): ReadonlyArray<string> | undefined => {
  if (typeof schema["type"] === "string") return [schema["type"]]
  const members = schema["anyOf"]
  if (!Array.isArray(members)) return undefined
  const types = members.map((member: JsonSchema) => typesOf(member))
  return types.some((t) => t === undefined) ? undefined : [...new Set(types.flat() as Array<string>)]
}

const mapValues = (record: unknown, f: (schema: JsonSchema) => JsonSchema): JsonSchema =>
  Object.fromEntries(Object.entries(record as { readonly [key: string]: JsonSchema }).map(([key, value]) => [key, f(value)]))

// A value position: the converted schema, a reference, or (where another JSON type is expected) a
// value holding a reference, as `Params.problem` skips an issue at a value that is or holds one.
const widen = (schema: JsonSchema, json: JsonSchema): JsonSchema => {
  const inner = widenInside(schema, json)
  const types = typesOf(schema)
  if (types === undefined) return inner
  return { anyOf: [inner, def("Reference"), { ...def("HasReference"), not: { type: types } }] }
}

// The positions inside a converted schema widened; `json` stands for a position of any JSON.
const widenInside = (schema: JsonSchema, json: JsonSchema): JsonSchema => {
  if (JSON.stringify(schema) === secretText) return def("Secret")
  if (typesOf(schema) === undefined) return json
  const out: { [keyword: string]: unknown } = { ...schema }
  if (schema["properties"] !== undefined) out["properties"] = mapValues(schema["properties"], (p) => widen(p, json))
  const additional = schema["additionalProperties"]
  if (typeof additional === "object" && additional !== null) out["additionalProperties"] = widen(additional as JsonSchema, json)
  else if (schema["type"] === "object" && additional !== false) out["additionalProperties"] = json
  if (schema["items"] !== undefined) out["items"] = widen(schema["items"] as JsonSchema, json)
  if (Array.isArray(schema["anyOf"])) out["anyOf"] = schema["anyOf"].map((member: JsonSchema) => widenInside(member, json))
  return out
}

const definitionName = (type: string): string => `${type.charAt(0).toUpperCase()}${type.slice(1)}Params`

const paramsOf = (type: string, spec: Params.Spec): JsonSchema => {
  const converted = Schema.toJsonSchemaDocument(spec.schema, { onExcessProperty: spec.strict === true ? "error" : "ignore" }).schema
  // An empty struct converts to "anything but null"; params are an object all the same.
  const object = converted.type === "object" ? converted : { type: "object" }
  const root = widenInside(object, type === "http" ? def("SecretValue") : def("Value"))
  const description = `The params of a built-in ${type} block (checked unless the block is disabled).`
  return spec.jsonRules === undefined ? { ...root, description } : { allOf: [root, spec.jsonRules], description }
}

/**
 * The definitions the params schemas use: `Reference`, `Secret`, `HasReference`, `Value`,
 * `SecretValue` and `<Type>Params` for each built-in type.
 */
export const paramsDefinitions = (): { readonly [name: string]: JsonSchema } => ({
  ...definitions,
  ...Object.fromEntries(Object.entries(Params.builtins).map(([type, spec]) => [definitionName(type), paramsOf(type, spec)]))
})

const typeIs = (type: string): JsonSchema => ({ properties: { type: { const: type } }, required: ["type"] })

/**
 * The conditions on a block's params (for the block schema's `allOf`): secrets only in an `http`
 * block's secret fields; each enabled built-in block's params fit its type's `<Type>Params`
 * (required when an empty object does not fit).
 */
export const blockRules = (): ReadonlyArray<JsonSchema> => [
  {
    if: typeIs("http"),
    then: {
      properties: {
        params: { properties: Object.fromEntries([...Params.secretFields].map((field) => [field, def("SecretValue")])), additionalProperties: def("Value") }
      }
    },
    else: { properties: { params: { additionalProperties: def("Value") } } }
  },
  ...Object.keys(Params.builtins).map((type) => ({
    if: { properties: { type: { const: type }, disabled: { not: { const: true } } }, required: ["type"] },
    then: {
      properties: { params: def(definitionName(type)) },
      ...(Params.builtinProblem(type, {}) === undefined ? {} : { required: ["params"] })
    }
  }))
]
