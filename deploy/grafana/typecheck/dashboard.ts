// The dashboard JSON, checked against Grafana's published dashboard types (@grafana/schema).
// tests/test_dashboard_types.py writes board.ts = this file + `const board: Json<Dashboard> = <the JSON>;`.
// A JSON model carries an enum's *value* ("absolute"), where the TypeScript type names the enum
// (ThresholdsMode.Absolute): Json<T> maps every string enum to the union of its values and leaves the
// rest of the type as Grafana publishes it, required fields included.
import type { Dashboard } from '@grafana/schema';

type Json<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Json<U>>
      : T extends object
        ? { [K in keyof T]: Json<T[K]> }
        : T;
