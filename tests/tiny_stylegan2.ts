// The tiny grey StyleGAN2 the merging, editing and scheduler tests build their sources from: 8x8, few
// channels, short mapping networks, so a training step costs milliseconds on the CPU adapter.

import { presetConfig, type StyleGAN2Config } from "../gan/stylegan2/config.ts";

export function tinyStyleGAN2(o: Partial<StyleGAN2Config> = {}): StyleGAN2Config {
  return presetConfig("tiny16", {
    resolution: 8,
    imgChannels: 1,
    channelBase: 64,
    channelMax: 16,
    zDim: 16,
    wDim: 16,
    mappingLayers: 2,
    dMappingLayers: 2,
    mbstdGroupSize: 2,
    ...o,
  });
}
