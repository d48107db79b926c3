/**
 * Shorthands over the generated {@link Operations}: the body, answer and query of an operation.
 * @module
 */

import type { OperationId, Operations } from "./openapi.js";
import type { CallOptions, RequestSpec, Transport } from "./http.js";

/** The JSON body an operation takes. */
export type Body<K extends OperationId> = Operations[K]["body"];
/** The JSON answer of an operation. */
export type Result<K extends OperationId> = Operations[K]["response"];
/** The query parameters of an operation. */
export type Query<K extends OperationId> = Operations[K]["query"];

/** Base of every surface: holds the transport. */
export class Surface {
  /** @internal */
  protected readonly transport: Transport;

  constructor(transport: Transport) {
    this.transport = transport;
  }

  /** @internal */
  protected call<K extends OperationId>(_op: K, spec: RequestSpec, options?: CallOptions): Promise<Result<K>> {
    return this.transport.request<Result<K>>(spec, options);
  }
}
