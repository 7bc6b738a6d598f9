/** Shared by the server tests: the tiny random VLM, loaded once, a live server on 127.0.0.1:0, and a PNG as a data URL. */
import { readFileSync } from 'node:fs';
import { writeTinyVlm, type TinyVlmFiles } from '../helpers/tiny-vlm.ts';
import { VisionLanguageModel } from '../../src/runtime/vlm.ts';
import { serve, type RunningServer } from '../../src/server/serve.ts';
import type { ServerOptions } from '../../src/server/app.ts';

let loaded: Promise<{ files: TinyVlmFiles; model: VisionLanguageModel; pngDataUrl: string }> | null = null;

export function tinyModel(): Promise<{ files: TinyVlmFiles; model: VisionLanguageModel; pngDataUrl: string }> {
  loaded ??= (async () => {
    const files = await writeTinyVlm();
    const model = await VisionLanguageModel.load({ model: files.model, mmproj: files.mmproj });
    return { files, model, pngDataUrl: `data:image/png;base64,${readFileSync(files.png).toString('base64')}` };
  })();
  return loaded;
}

export async function liveServer(opts: Partial<ServerOptions> = {}): Promise<RunningServer> {
  const { model } = await tinyModel();
  return serve({ model, modelName: 'vista-tiny', port: 0, host: '127.0.0.1', log: () => {}, ...opts });
}
