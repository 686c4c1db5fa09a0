// Reading an environment variable without asking for a permission: unset when env access is not granted.

/** The variable's value; undefined when unset or when this process may not read it. */
export function envGet(name: string): string | undefined {
  try {
    return Deno.permissions.querySync({ name: "env", variable: name }).state === "granted"
      ? Deno.env.get(name)
      : undefined;
  } catch {
    return undefined;
  }
}
