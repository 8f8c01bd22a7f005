//! Compile-time proof that the store's event switch is exhaustive. Only `tsc --noEmit` (and
//! svelte-check) read this file; nothing imports it and nothing runs it.
//!
//! `ChatStore#handle` ends in `default: { const _exhaustive: never = e }`, which compiles
//! only while every type of the generated `ServerEvent` union has its case. The functions
//! below pin that the pattern really refuses what it must: a switch with one case missing,
//! and one over a union that has gained a type nobody handles (what a new event added on
//! the Rust side looks like to the web UI). Each `never` assignment there is expected to
//! fail; should it ever compile, `tsc` reports the `@ts-expect-error` as unused and the
//! build fails.

import type { ServerEvent } from '../api/generated';

/** Every type handled: compiles. */
export function handlesEveryType(e: ServerEvent): string {
  switch (e.type) {
    case 'hello':
    case 'ack':
    case 'message':
    case 'presence':
    case 'typing':
    case 'read':
    case 'user_updated':
    case 'conversation':
    case 'message_updated':
    case 'played':
    case 'synced':
    case 'pong':
    case 'error':
      return e.type;
    default: {
      const _exhaustive: never = e;
      return _exhaustive;
    }
  }
}

/** `pong` forgotten: the `never` assignment must not compile. */
export function forgetsOneType(e: ServerEvent): string {
  switch (e.type) {
    case 'hello':
    case 'ack':
    case 'message':
    case 'presence':
    case 'typing':
    case 'read':
    case 'user_updated':
    case 'conversation':
    case 'message_updated':
    case 'played':
    case 'synced':
    case 'error':
      return e.type;
    default: {
      // @ts-expect-error `{ type: 'pong' }` is not assignable to `never`.
      const _exhaustive: never = e;
      return _exhaustive;
    }
  }
}

/** The server learned a new event (say `reaction`) and the generated union grew: a switch
 *  that handles every type known before must not compile. */
type GrownServerEvent = ServerEvent | { type: 'reaction'; conversation_id: number; seq: number; emoji: string };

export function missesANewType(e: GrownServerEvent): string {
  switch (e.type) {
    case 'hello':
    case 'ack':
    case 'message':
    case 'presence':
    case 'typing':
    case 'read':
    case 'user_updated':
    case 'conversation':
    case 'message_updated':
    case 'played':
    case 'synced':
    case 'pong':
    case 'error':
      return e.type;
    default: {
      // @ts-expect-error `{ type: 'reaction', … }` is not assignable to `never`.
      const _exhaustive: never = e;
      return _exhaustive;
    }
  }
}
