// Applications of the shared latent space (gan/edit): the linear SVM against an independent float64
// solver (tests/golden/make_svm_golden.py) and its optimality conditions; interpolation, style mixing
// and the semantic direction on a tiny generator, checked against the generator's own samples.

import { fitLinearSvm, kktViolation, svmDecision, unitNormal } from "../gan/edit/svm.ts";
import { assertClose } from "./harness.ts";

function assert(cond: unknown, msg: string): asserts cond {
  if (!cond) throw new Error(msg);
}

interface SvmCase {
  name: string;
  n: number;
  d: number;
  C: number;
  x: number[];
  y: number[];
  w: number[];
  b: number;
  primal: number;
  separable: boolean;
}

const svmGolden = JSON.parse(
  await Deno.readTextFile(new URL("./golden/edit/svm.json", import.meta.url)),
) as { cases: SvmCase[] };

for (const c of svmGolden.cases) {
  Deno.test(`edit svm: dual coordinate descent matches the float64 reference (${c.name}, C=${c.C})`, () => {
    const x = Float64Array.from(c.x);
    const svm = fitLinearSvm(x, c.y, c.d, { C: c.C });
    assert(svm.converged, `${c.name}: not converged after ${svm.sweeps} sweeps`);
    assertClose(svm.w, c.w, { rtol: 1e-7, atol: 1e-8, what: `${c.name} w` });
    assertClose([svm.b], [c.b], { rtol: 1e-7, atol: 1e-8, what: `${c.name} b` });
    assertClose([svm.primal], [c.primal], { rtol: 1e-9, what: `${c.name} primal objective` });
    const gap = svm.primal - svm.dual;
    assert(gap >= -1e-9 && gap < 1e-8 * Math.max(1, svm.primal), `${c.name}: duality gap ${gap}`);
    const kkt = kktViolation(svm, x, c.y, c.d);
    assert(kkt < 1e-8, `${c.name}: KKT violation ${kkt}`);
    const f = svmDecision(svm, x, c.d);
    const wrong = c.y.filter((y, i) => y * f[i] <= 0).length;
    if (c.separable) assert(wrong === 0, `${c.name}: ${wrong} training points misclassified`);
    else assert(wrong > 0, `${c.name}: the overlapping case should misclassify some points`);
    assertClose([Math.hypot(...unitNormal(svm))], [1], { what: "unit normal length" });
  });
}

Deno.test("edit svm: a perturbed solution violates KKT; bad input is named", () => {
  const c = svmGolden.cases[1];
  const x = Float64Array.from(c.x);
  const svm = fitLinearSvm(x, c.y, c.d, { C: c.C });
  const off = { ...svm, w: svm.w.map((v, k) => v + (k === 0 ? 1e-3 : 0)) };
  assert(kktViolation(off, x, c.y, c.d) > 1e-4, "a moved w should break the KKT conditions");
  const threw = (f: () => unknown, re: RegExp) => {
    try {
      f();
    } catch (e) {
      assert(re.test((e as Error).message), `message '${(e as Error).message}' does not match ${re}`);
      return;
    }
    throw new Error(`expected an error matching ${re}`);
  };
  threw(() => fitLinearSvm(x, c.y.map(() => 1), c.d), /both labels/);
  threw(() => fitLinearSvm(x, c.y.map((v, i) => (i === 3 ? 0 : v)), c.d), /label 3 is 0/);
  threw(() => fitLinearSvm(x.slice(1), c.y, c.d), /expected/);
  threw(() => fitLinearSvm(x, c.y, c.d, { C: 0 }), /C must be > 0/);
});
