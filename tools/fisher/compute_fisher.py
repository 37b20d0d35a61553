#!/usr/bin/env python3
"""Diagonal empirical Fisher of a Hugging Face model over a dataset, written for modelmerge's `fisher` merge.

    F_j = (1/N) * sum over examples n of (d log p(y_n | x_n) / d theta_j)^2

one backward pass per example (per-example gradients, as Matena & Raffel compute it; squaring a batch's mean
gradient would be a different, smaller quantity). y_n is the dataset's label (empirical Fisher) or, with
--sampled, a label drawn from the model's own prediction (the true Fisher's Monte-Carlo estimate).

The output directory holds model.safetensors with one F32 tensor per trainable parameter, named exactly as in
the model's own checkpoint, plus fisher.json describing how it was computed. Register it with modelmerge as a
version of format `fisher` whose parent is the model, relation `fisher_of`, and name it per model in a recipe:

    merge_method: fisher
    models:
      - model: team/math@3
        parameters: {weight: 1.0, fisher: team/math-fisher@1}

Runs where the models are trained: needs torch, transformers and safetensors (not modelmerge's machines).

Input: a JSON-lines file, one example per line: {"text": "..."} for causal LMs (the label is the text itself,
shifted) or {"text": "...", "label": 3} for sequence classification (--task classification).
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
    p.add_argument("--task", choices=["causal-lm", "classification"], default="causal-lm")
    p.add_argument("--examples", type=int, default=1000, help="examples to use (default 1000)")
    p.add_argument("--max-length", type=int, default=512, help="tokens per example (default 512)")
    p.add_argument("--sampled", action="store_true", help="sample labels from the model (true Fisher)")
    p.add_argument("--device", default=default_device())
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)




def log_likelihood(model, batch, task, sampled, generator):
    """log p(y | x) summed over the example's predicted tokens (or its one label)."""
    import torch
    logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits
    if task == "causal-lm":
        logits = logits[:, :-1, :]
        targets = batch["input_ids"][:, 1:]
        mask = batch["attention_mask"][:, 1:].bool()
    else:
        targets = batch["labels"].view(-1, 1)
        logits = logits.view(targets.shape[0], 1, -1)
        mask = torch.ones_like(targets, dtype=torch.bool)
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    if sampled:
        with torch.no_grad():
            targets = torch.multinomial(log_probs.exp().view(-1, log_probs.shape[-1]), 1,
                                        generator=generator).view(targets.shape)
    picked = log_probs.gather(-1, targets.unsqueeze(-1)).squeeze(-1)
    return picked[mask].sum()


def main(argv):
    args = parse_args(argv)
    import torch
    from safetensors.torch import save_file
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    if os.path.exists(args.out):
        sys.exit(f"{args.out} exists; choose a new directory")
    torch.manual_seed(args.seed)
    generator = torch.Generator(device=args.device).manual_seed(args.seed)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    auto = AutoModelForCausalLM if args.task == "causal-lm" else AutoModelForSequenceClassification
    model = auto.from_pretrained(args.model, torch_dtype=torch.float32).to(args.device)
    model.eval()  # no dropout: the Fisher of the model as it will be merged
    params = {name: p for name, p in model.named_parameters() if p.requires_grad}
    fisher = {name: torch.zeros_like(p, dtype=torch.float32) for name, p in params.items()}

    count = 0
    for example in examples(args.data, args.examples):
        batch = tokenizer(example["text"], return_tensors="pt", truncation=True, max_length=args.max_length)
        if args.task == "classification":
            batch["labels"] = torch.tensor([int(example["label"])])
        batch = {k: v.to(args.device) for k, v in batch.items()}
        model.zero_grad(set_to_none=True)
        log_likelihood(model, batch, args.task, args.sampled, generator).backward()
        for name, p in params.items():
            if p.grad is not None:
                fisher[name] += p.grad.detach().float() ** 2
        count += 1
    if count == 0:
        sys.exit(f"{args.data} has no examples")

    # The checkpoint's own names: those save_pretrained writes (tied weights once, under their saved name).
    saved = set(model.state_dict().keys())
    tensors = {name: (f / count).contiguous().cpu() for name, f in fisher.items() if name in saved}
    os.makedirs(args.out)
    save_file(tensors, os.path.join(args.out, "model.safetensors"), metadata={"format": "pt"})
    with open(os.path.join(args.out, "fisher.json"), "w", encoding="utf-8") as f:
        json.dump({"model": args.model, "data": args.data, "examples": count, "task": args.task,
                   "estimate": "sampled" if args.sampled else "empirical", "seed": args.seed}, f, indent=2)
    print(f"wrote the diagonal Fisher of {len(tensors)} tensors over {count} examples to {args.out}")


if __name__ == "__main__":
    main(sys.argv[1:])
