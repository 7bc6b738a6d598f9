/**
 * The `vista` command line. Each command parses its own flags; errors are one clear line and a
 * non-zero exit code (stack traces only with --verbose). Only this layer may end the process.
 */
import { VistaError } from '../errors.ts';
import { info, logits, quantizeCmd, tokenize } from './commands/gguf-tools.ts';
import { chat, defaultModelPaths } from './commands/chat.ts';
import { runDataShapes } from '../data/cli.ts';
import { trainCommand } from './commands/train.ts';
import { evalCommand } from './commands/eval.ts';
import { runServe } from './commands/serve.ts';
import { runAct } from './commands/act.ts';

const USAGE = `vista — vision-language models in TypeScript

Usage: vista <command> [options]

Commands:
  start            serve the bundled default model (what \`npm start\` runs)
  serve            OpenAI- and Ollama-compatible HTTP server (--model --mmproj --host --port ...)
  act              run the agent on an image (--image a.png [--mcp cfg.json] [--confirm] "Click the red circle")
  chat             ask about images (--model LM.gguf --mmproj P.gguf --image a.png "prompt")
  data shapes      generate Shapes World data (--n N --out DIR --seed S [--size 128])
  train CONFIG     train a VLM in stages (vision, lm, align, instruct) [--resume] [--max-steps N]
  eval             score a model on a Shapes World split (--model --mmproj --data DIR [--json])
  info FILE.gguf   metadata, tensor names, shapes, types and sizes
  quantize IN OUT  requantize 2-D weights: --type q8_0|q4_0
  tokenize         token ids of a text (--model LM.gguf [--special] TEXT | --file F.json)
  logits           logits per position (--model LM.gguf --tokens 1,2,3 [--top N | --last])
  help             this text

Run \`vista <command> --help\` for a command's options.`;

export async function main(argv: string[]): Promise<number> {
  const [cmd, ...rest] = argv;
  const verbose = rest.includes('--verbose');
  try {
    switch (cmd) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        console.log(USAGE);
        return 0;
      case 'start':
        return await start(rest);
      case 'chat':
        return await chat(rest);
      case 'serve':
        return await runServe(rest);
      case 'act':
        return await runAct(rest);
      case 'data':
        if (rest[0] !== 'shapes') {
          console.error("vista: 'vista data' has one generator: vista data shapes --n N --out DIR --seed S");
          return 2;
        }
        return await runDataShapes(rest.slice(1));
      case 'train':
        return await trainCommand(rest);
      case 'eval':
        return await evalCommand(rest);
      case 'info':
        return await info(rest);
      case 'quantize':
        return await quantizeCmd(rest);
      case 'tokenize':
        return await tokenize(rest);
      case 'logits':
        return await logits(rest);
      default:
        console.error(`vista: unknown command '${cmd}' (see vista help)`);
        return 2;
    }
  } catch (e) {
    if (verbose) console.error(e);
    else console.error(`vista: ${e instanceof VistaError ? `${e.name}: ` : ''}${(e as Error).message}`);
    return 1;
  }
}

/** `npm start`: serve the bundled default model (OpenAI/Ollama API and the web UI), or say what is missing. */
async function start(argv: string[]): Promise<number> {
  if (!defaultModelPaths()) {
    console.log('vista: the bundled default model (models/vista-shapes.gguf + models/mmproj-vista-shapes.gguf) is not trained yet,');
    console.log('so there is nothing to serve. Train it with `npm run train:default`, or serve any GGUF model:');
    console.log('  vista serve --model LM.gguf --mmproj mmproj.gguf');
    return 0;
  }
  return runServe(argv);
}
