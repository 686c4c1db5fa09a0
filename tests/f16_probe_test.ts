// The shader-f16 probe: offered exactly when the adapter lists the feature, and, where offered, its
// known-answer kernel's verdict is printed (a driver that offers f16 and gets it wrong is what it is for).

import { gpuTest } from "./harness.ts";
import { gpu } from "../kernels/runtime.ts";

gpuTest(
  "f16 probe: offered iff the adapter lists shader-f16; the verdict is cached and printed",
  async () => {
    const rt = gpu();
    const probe = await rt.probeShaderF16();
    const listed = rt.info.features.includes("shader-f16");
    if (probe.offered !== listed) {
      throw new Error(
        `probe offered=${probe.offered}, adapter lists f16: ${listed}`,
      );
    }
    if (!probe.offered && probe.ok) throw new Error("f16 cannot be usable when it is not offered");
    if (await rt.probeShaderF16() !== probe) throw new Error("the probe should run once per device");
    console.log(`f16 probe on ${rt.info.description || rt.info.vendor}: ${JSON.stringify(probe)}`);
  },
);
