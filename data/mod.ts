// The data layer: datasets (MNIST, emoji, folders, SGA zips), image files and image grids.

export {
  type AlphaMode,
  decodeImage,
  encodePng,
  floatToUint8,
  imageGrid,
  readImage,
  saveImageGrid,
  writePng,
} from "./image_io.ts";
export type { GridOptions, RawImage } from "./image_io.ts";
export { centerCropSquare, padImage, resizeImage, toChannels } from "./resize.ts";
export { ArrayDataset, type Dataset, sampler, subsetIndices } from "./dataset.ts";
export { DATASET_SPEC_HELP, openDataset, type OpenOptions } from "./open.ts";
export { loadMnist, type MnistOptions } from "./mnist.ts";
export { EMOJI_STYLES, type EmojiOptions, type EmojiStyle, loadEmoji } from "./emoji.ts";
export { type FolderOptions, loadFolder } from "./folder.ts";
export { datasetFromZip, loadZip, type ZipOptions } from "./zip.ts";
