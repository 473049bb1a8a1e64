# Sizing probe for issue 17 (run by hand, not under the benchmark lock): time split_signals of the
# un-fine-tuned SmolLM2-135M on each evaluated split of a 10-author TOFU subset (eval_size 20), float32.
# The glob below points at the model cache the probe used.
import time, torch
torch.set_num_threads(1)
from obliviate.tasks.lm_config import LMBenchConfig
from obliviate.tasks.lm_data import tofu_data
from obliviate.tasks.causal_lm import evaluate_model
from obliviate.models.lm import load_lm, QAFormat
from obliviate.audit.lm_eval import split_signals
cfg = LMBenchConfig(task='tofu', split='forget10', model='smollm2-135m', subset={'n_authors': 10, 'eval_size': 20}, eval={'verbatim': False, 'n_boot': 50})
d = tofu_data(cfg, 0)
import glob
m, tok = load_lm(glob.glob('/tmp/smol/cache/base-smollm2*')[0])
fmt = QAFormat(tok, max_length=8192)
for name, ds in d.evals.items():
    t=time.time(); split_signals(m, fmt, ds, batch_size=64); print(name, len(ds), round(time.time()-t,1), flush=True)
import os; print(os.getloadavg())
