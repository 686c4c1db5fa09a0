// SGA's dataset.json: {"labels": [["relative/path.png", classIndex], ...]} or {"labels": null}. Paths use
// forward slashes and are relative to the dataset root (zip root or folder). Only integer class labels are
// supported (SGA also allows float vectors). Every image needs a label and every label an image.

/** Parses dataset.json text into path -> label, or null when it declares no labels. */
export function parseSgaLabels(text: string, where: string): Map<string, number> | null {
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
