#!/usr/bin/env python3
"""Gram matrices of a Hugging Face model's linear layers' inputs over a dataset, for modelmerge's `regmean` merge.

    G = (1/T) * sum over tokens t of x_t x_t^T        (x_t: the layer's input at token t, [in])

the running mean per token that FusionBench's RegMean keeps, in float64 while summing. Every nn.Linear gets a
forward hook; layers fed the same input tensor in a forward pass (q, k and v; gate and up) share one Gram:
it is stored once, under the first layer's weight name, and the file's metadata maps the others' weight names
to it, as modelmerge's regmean reads it. Embeddings, norms and other tensors have no Gram; regmean averages them.

The output directory holds model.safetensors with one F32 [in, in] tensor per distinct input, named as the
weight it belongs to (e.g. model.layers.0.self_attn.q_proj.weight), plus gram.json describing how it was
computed. Register it with modelmerge as a version of format `gram` whose parent is the model, relation
`gram_of`, and name it per model in a recipe:

    merge_method: regmean
    parameters: {reduce_non_diagonal_ratio: 0.6}
    models:
      - model: team/math@3
        parameters: {gram: team/math-gram@1}

Runs where the models are trained: needs torch, transformers and safetensors (not modelmerge's machines).

Input: a JSON-lines file, one example per line: {"text": "..."}; each is tokenized alone (no padding), so every
token counts. Use the fine-tune's own training data, or a sample of it: RegMean needs no labels.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from hf_examples import default_device, examples  # noqa: E402  (tools/hf_examples.py)


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="model directory or Hub id")
    p.add_argument("--data", required=True, help="JSON-lines file of examples")
    p.add_argument("--out", required=True, help="output directory (created; must not exist)")
    p.add_argument("--examples", type=int, default=1000, help="examples to use (default 1000)")
    p.add_argument("--max-length", type=int, default=512, help="tokens per example (default 512)")
    p.add_argument("--task", choices=["causal-lm", "classification"], default="causal-lm")
    p.add_argument("--device", default=default_device())
    return p.parse_args(argv)




class Grams:
    """Sums x x^T per distinct input and counts tokens; remembers which layers shared an input."""

    def __init__(self):
        self.sums = {}      # Gram name -> float64 [in, in]
        self.tokens = {}    # Gram name -> tokens summed
        self.shared = {}    # weight name -> Gram name, where it is another layer's
        self.seen = {}      # this forward pass: id of an input tensor -> (Gram name, the tensor, kept alive so
                            # that its id is not reused within the pass)

    def hook(self, weight_name):
        import torch

        def record(module, inputs, output):
            x = inputs[0]
            owner = self.seen.get(id(x))
            if owner is not None and owner[0] != weight_name:
                self.shared[weight_name] = owner[0]
                return
            self.seen[id(x)] = (weight_name, x)
            flat = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
            gram = flat.T @ flat
            if weight_name in self.sums:
                self.sums[weight_name] += gram
            else:
                self.sums[weight_name] = gram
            self.tokens[weight_name] = self.tokens.get(weight_name, 0) + flat.shape[0]
        return record

    def next_pass(self):
        self.seen.clear()


def main(argv):
    args = parse_args(argv)
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists; choose a new directory")
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    auto = AutoModelForCausalLM if args.task == "causal-lm" else AutoModelForSequenceClassification
    model = auto.from_pretrained(args.model, torch_dtype=torch.float32).to(args.device)
    model.eval()
    saved = set(model.state_dict().keys())
    grams = Grams()
    for name, module in model.named_modules():
        if isinstance(module, torch.nn.Linear) and name + ".weight" in saved:
            module.register_forward_hook(grams.hook(name + ".weight"))

    count = 0
    with torch.no_grad():
        for example in examples(args.data, args.examples):
            batch = tokenizer(example["text"], return_tensors="pt", truncation=True, max_length=args.max_length)
            grams.next_pass()
            model(**{k: v.to(args.device) for k, v in batch.items()})
            count += 1
    if count == 0:
        sys.exit(f"{args.data} has no examples")

    tensors = {name: (s / grams.tokens[name]).to(torch.float32).contiguous().cpu() for name, s in grams.sums.items()}
    metadata = {"format": "pt"}
    metadata.update({weight: owner for weight, owner in grams.shared.items() if weight not in tensors})
    os.makedirs(args.out)
    save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata=metadata)
    with open(os.path.join(args.out, "gram.json"), "w", encoding="utf-8") as f:
        json.dump({"model": args.model, "data": args.data, "examples": count,
                   "tokens": sum(grams.tokens.values()), "grams": len(tensors), "shared": len(grams.shared),
                   "mean": "per token"}, f, indent=2)
    print(f"wrote {len(tensors)} Grams ({len(grams.shared)} layers share one) over {count} examples to {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
