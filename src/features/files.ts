// Files: what the command wrote. uwrx-init keeps files.meta and the preserved versions
// during the run (its part of the plan is computed with the overlays); at the end the
// storage actor moves the uppers and versions into the attempt.
import { timing } from '../timing.js';
import { defineFeature } from './feature.js';

export default defineFeature({
  name: 'files',
  // the uppers and files.meta: needs no other feature's record
  finishAfter: [],
  create() {
    let filesWritten = 0;
    return {
      async finish(run, { sandbox }) {
        ({ filesWritten } = await run.storage.storeFiles({
          overlays: sandbox.overlays,
          ...(sandbox.files ? { files: sandbox.files } : {}),
        }));
        timing('record collected (uppers, files.meta)');
      },
      status: () => ({ filesWritten }),
    };
  },
});
