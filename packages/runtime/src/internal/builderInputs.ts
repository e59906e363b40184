/**
 * Derives a workflow's declared `inputs` from the `effect/Schema` struct a code-first workflow
 * declares, so `Runs.start` checks run inputs the same way for built and hand-written workflows.
 */
import type { Workflow } from "@ripple/core"
import * as SchemaAST from "effect/SchemaAST"

type InputType = Workflow.InputDeclaration["type"]

const literalType = (literal: unknown): InputType =>
  typeof literal === "string" ? "string" : typeof literal === "number" ? "number" : typeof literal === "boolean" ? "boolean" : "json"

// The declaration types are coarse (no unions, no literals): anything that is not exactly one of
// them is declared `json` and left to the schema, which decodes the input in every step anyway.
const typeOf = (ast: SchemaAST.AST): InputType => {
  switch (ast._tag) {
    case "String":
    case "TemplateLiteral":
      return "string"
    case "Number":
      return "number"
    case "Boolean":
      return "boolean"
    case "Literal":
      return literalType(ast.literal)
    case "Arrays":
      return "array"
    case "Objects":
      return ast.propertySignatures.length === 0 && ast.indexSignatures.length === 0 ? "json" : "object"
    case "Union": {
      const members = ast.types.filter((t) => t._tag !== "Undefined")
      const types = new Set(members.map(typeOf))
      return types.size === 1 ? [...types][0]! : "json"
    }
    case "Suspend":
      return typeOf(ast.thunk())
    default:
      return "json"
  }
}

/**
 * The input declarations of a struct schema (its encoded side): one per property, optional keys
 * declared `required: false`, descriptions carried over. Returns `undefined` for a non-struct.
 */
export const declarationsOf = (schema: SchemaAST.AST): Record<string, Workflow.InputDeclaration> | undefined => {
  const encoded = SchemaAST.toEncoded(schema)
  if (encoded._tag !== "Objects") return undefined
  const out: Record<string, Workflow.InputDeclaration> = {}
  for (const property of encoded.propertySignatures) {
    if (typeof property.name !== "string") continue
    const description = property.type.annotations?.["description"]
    out[property.name] = {
      type: typeOf(property.type),
      ...(SchemaAST.isOptional(property.type) ? { required: false } : {}),
      ...(typeof description === "string" ? { description } : {})
    }
  }
  return out
}
