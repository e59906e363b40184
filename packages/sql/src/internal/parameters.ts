/**
 * Parameter typing for PGlite, mirroring how `@effect/sql-pg` binds JavaScript values, so that one
 * statement means the same on both backends (`SELECT $1` with `1` is an `int4` on both, a `Date`
 * is a `timestamptz`, a string is left for the server to infer, a `PgTypes` parameter keeps its OID).
 *
 * PGlite serializes every parameter to text with the serializer of the OID it is told (or that the
 * server inferred), so typing a parameter here only means choosing the OID.
 */
import * as PgTypes from "@effect/sql-pg/PgTypes"

/** Values and OIDs for one statement; OID 0 lets the server infer the type. */
export interface Bound {
  readonly values: Array<unknown>
  readonly types: Array<number>
}

const INT32_MIN = -2147483648
const INT32_MAX = 2147483647

const scalar = (value: unknown): readonly [oid: number, value: unknown] => {
  if (PgTypes.isParameter(value)) return [value.oid, value.value]
  if (value === null || value === undefined) return [0, null]
  switch (typeof value) {
    case "boolean":
      return [PgTypes.OID.bool, value]
    case "bigint":
      return [PgTypes.OID.int8, value]
    case "number":
      if (Number.isInteger(value)) {
        if (value >= INT32_MIN && value <= INT32_MAX) return [PgTypes.OID.int4, value]
        if (Number.isSafeInteger(value)) return [PgTypes.OID.int8, value]
      }
      return [PgTypes.OID.float8, value]
    case "string":
      return [0, value]
  }
  if (value instanceof Date) return [PgTypes.OID.timestamptz, value]
  if (value instanceof Uint8Array) return [PgTypes.OID.bytea, value]
  if (value instanceof Int8Array) {
    return [PgTypes.OID.bytea, new Uint8Array(value.buffer, value.byteOffset, value.byteLength)]
  }
  throw new TypeError(`Cannot infer a PostgreSQL type for ${String(value)}; wrap it (e.g. sql.json)`)
}

const array = (value: ReadonlyArray<unknown>): readonly [oid: number, value: unknown] => {
  if (value.length === 0) return [0, "{}"]
  let elementOid: number | undefined
  for (const element of value) {
    if (Array.isArray(element)) throw new TypeError("Nested array parameters are not supported")
    const [oid, inner] = scalar(element)
    if (inner === null) continue
    const typed = oid === 0 ? PgTypes.OID.text : oid
    if (elementOid === undefined) elementOid = typed
    else if (elementOid !== typed) throw new TypeError("Array parameter elements must have the same type")
  }
  if (elementOid === undefined) throw new TypeError("Cannot infer the type of an array of nulls")
  const arrayOid = PgTypes.arrayOidFor(elementOid)
  if (arrayOid === undefined) throw new TypeError(`No array type known for element OID ${elementOid}`)
  return [arrayOid, value.map((element) => PgTypes.isParameter(element) ? element.value : element)]
}

/**
 * Types every parameter of a statement.
 *
 * Throws a `TypeError` for a value no PostgreSQL type can be inferred for (as PgClient does).
 */
export const bind = (params: ReadonlyArray<unknown>): Bound => {
  const values: Array<unknown> = new Array(params.length)
  const types: Array<number> = new Array(params.length)
  for (let index = 0; index < params.length; index++) {
    const param = params[index]
    const [oid, value] = Array.isArray(param) ? array(param) : scalar(param)
    types[index] = oid
    values[index] = value
  }
  return { values, types }
}
