// The 2-D part of the pretrained-GAN study (REFERENCE.md section 7): the entry points the CLI calls.
// transfer: sources I and II, then fine-tunes on the target from each and from random init.
// dissect: checkpoints along source I's training, each fine-tuned; W1 against recall and gradient
// similarity. demo2d: a small end-to-end run for the README. profileToy2d: where a step's time goes.

export { runTransferStudy, type TransferOptions, type TransferResult } from "./transfer.ts";
export {
  type CheckpointResult,
  type DissectOptions,
  type DissectResult,
  runDissectStudy,
} from "./dissect.ts";
export { demo2d, type DemoOptions, type DemoResult } from "./demo.ts";
export { type ProfileReport, profileToy2d } from "./profile.ts";
export { type Progress, PROTOCOL } from "./train.ts";
export { GRAD_SIMILARITY_CONVENTION } from "./study_common.ts";
