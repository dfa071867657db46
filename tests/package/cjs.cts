// The types through `require('bitlens')` (a CommonJS TypeScript file): the same declarations as `import`.
import bitlens = require('bitlens');

export async function usesRequire(bytes: Uint8Array): Promise<number> {
  const bl = await bitlens.createBitLens({ wasmBinary: bytes });
  const model: bitlens.Model = bl.loadModel({ safetensors: bytes, config: '{}' });
  // @ts-expect-error loadModel is not async
  await bl.loadModel({ safetensors: bytes }).then(() => 0);
  return model.info.numClasses;
}
