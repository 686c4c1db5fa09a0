// SGA's dataset.json: {"labels": [["relative/path.png", classIndex], ...]} or {"labels": null}. Paths use
// forward slashes and are relative to the dataset root (zip root or folder). Only integer class labels are
// supported (SGA also allows float vectors). Every image needs a label and every label an image.

/** Parses dataset.json text into path -> label, or null when it declares no labels. */
export function parseSgaLabels(text: string, where: string): Map<string, number> | null {
  // {"labels": [["path", label], ...]} nests 3 deep; a deeper file is refused before JSON.parse builds it.
  const depth = jsonDepth(text);
  if (depth > MAX_JSON_DEPTH) {
    throw new Error(`${where}: dataset.json nests deeper than ${MAX_JSON_DEPTH} levels (at least ${depth})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new Error(`${where}: dataset.json is not valid JSON: ${(e as Error).message}`);
  }
  const labels = (json as { labels?: unknown } | null)?.labels;
  if (labels === null || labels === undefined) return null;
  if (!Array.isArray(labels)) {
    throw new Error(`${where}: dataset.json "labels" must be a list of [path, label] pairs`);
  }
  const map = new Map<string, number>();
  for (const pair of labels) {
    if (!Array.isArray(pair) || pair.length !== 2 || typeof pair[0] !== "string") {
      throw new Error(`${where}: dataset.json labels entry ${JSON.stringify(pair)} is not [path, label]`);
    }
    const [path, label] = pair;
    if (!Number.isInteger(label) || label < 0) {
      throw new Error(
        `${where}: dataset.json label for ${path} is ${
          JSON.stringify(label)
        }; only class indices >= 0 are supported`,
      );
    }
    map.set(path.replaceAll("\\", "/"), label);
  }
  return map;
}

/** The label of each image path, checking that the two lists match exactly. */
export function matchSgaLabels(
  paths: readonly string[],
  labels: Map<string, number>,
  where: string,
): number[] {
  const missing = paths.filter((p) => !labels.has(p));
  if (missing.length > 0) {
    throw new Error(
      `${where}: dataset.json has no label for ${missing.length} image(s), e.g. ${
        missing.slice(0, 3).join(", ")
      }`,
    );
  }
  const present = new Set(paths);
  const orphans = [...labels.keys()].filter((p) => !present.has(p));
  if (orphans.length > 0) {
    throw new Error(
      `${where}: dataset.json labels ${orphans.length} file(s) that are not images in the dataset, e.g. ` +
        orphans.slice(0, 3).join(", "),
    );
  }
  return paths.map((p) => labels.get(p)!);
}

const MAX_JSON_DEPTH = 64;

/** The deepest bracket nesting of JSON text, outside strings (stops counting past MAX_JSON_DEPTH). */
function jsonDepth(text: string): number {
  let depth = 0, max = 0, inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max && (max = depth) > MAX_JSON_DEPTH) return max;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return max;
}
