// The code of a model thread: loads one ONNX model with transformers.js and runs it on the
// batches the main thread sends. Plain JavaScript, because a worker thread starts without the
// TypeScript loader the main thread may have. The messages are typed in thread-protocol.ts.
import { parentPort, workerData } from 'node:worker_threads';

/** The model class transformers.js's `pipeline()` picks for each task LocalInference supports. */
const MODEL_CLASS = {
  'feature-extraction': 'AutoModel',
  'text-classification': 'AutoModelForSequenceClassification',
};

const port = parentPort;
if (port === null) throw new Error('model-thread-entry.mjs runs only as a worker thread');

/** @type {import('./thread-protocol.ts').ThreadStart} */
const start = workerData;
/** Runs not yet answered, so that a close can wait for them. */
const inFlight = new Set();
let closing = false;

try {
  const { model, Tensor } = await loadModel(start);
  port.on('message', (message) => receive(model, Tensor, message));
  port.postMessage({ type: 'ready' });
} catch (error) {
  port.postMessage({ type: 'load-failed', message: messageOf(error) });
  port.close();
}

/**
 * Handle one message. One this thread does not know is a bug on the main thread's side: the throw
 * stops the thread, which rejects the runs waiting on it there, rather than leave them unanswered.
 */
function receive(model, Tensor, message) {
  if (message.type === 'run') {
    const running = run(model, Tensor, message);
    inFlight.add(running);
    void running.finally(() => inFlight.delete(running));
  } else if (message.type === 'close') {
    void close(model);
  } else {
    throw new Error(`model thread: unknown message type "${message.type}"`);
  }
}

/**
 * Answer the runs already received, free the ONNX session, and let the thread end. Never
 * `Worker.terminate()` a model thread instead: stopping it inside an ONNX run aborts the process.
 */
async function close(model) {
  closing = true;
  await Promise.all(inFlight);
  await model.dispose();
  port.close();
}

/** Import transformers.js, point it where the main thread's loads look, and load the model. */
async function loadModel({ task, model, dtype, sessionOptions, env, logLevel }) {
  const transformers = await import('@huggingface/transformers');
  const className = MODEL_CLASS[task];
  if (className === undefined) throw new Error(`unsupported task "${task}"`);

  Object.assign(transformers.env, env, { logLevel });
  // transformers.js hands session_options to ONNX Runtime's InferenceSession.create. With
  // intraOpNumThreads n, a run uses this thread and n - 1 of ONNX Runtime's own; 0: its default.
  const loaded = await transformers[className].from_pretrained(model, {
    dtype,
    session_options: sessionOptions,
  });
  return { model: loaded, Tensor: transformers.Tensor };
}

/** Run the model on one batch and answer with its tensors, their buffers transferred. */
async function run(model, Tensor, { id, inputs }) {
  if (closing) {
    port.postMessage({ type: 'run-failed', id, message: 'the model thread is closing' });
    return;
  }

  try {
    const outputs = await model({
      input_ids: new Tensor('int64', inputs.input_ids.data, inputs.input_ids.dims),
      attention_mask: new Tensor('int64', inputs.attention_mask.data, inputs.attention_mask.dims),
    });
    const { tensors, buffers } = wireTensors(outputs, Tensor);
    port.postMessage({ type: 'result', id, outputs: tensors }, buffers);
  } catch (error) {
    port.postMessage({ type: 'run-failed', id, message: messageOf(error) });
  }
}

/**
 * The numeric tensors among the model's outputs, each with a buffer of its own to transfer:
 * a view into a larger or shared buffer is copied first, since a buffer moves whole, once.
 */
function wireTensors(outputs, Tensor) {
  const tensors = {};
  const buffers = [];
  for (const [name, value] of Object.entries(outputs ?? {})) {
    if (!(value instanceof Tensor) || Array.isArray(value.data)) continue;

    const { data } = value;
    const whole = data.byteOffset === 0 && data.byteLength === data.buffer.byteLength;
    const own = whole && data.buffer instanceof ArrayBuffer && !buffers.includes(data.buffer);
    const sent = own ? data : data.slice();
    tensors[name] = { dims: value.dims, data: sent };
    buffers.push(sent.buffer);
  }
  return { tensors, buffers };
}

function messageOf(error) {
  return error instanceof Error ? error.message : String(error);
}
