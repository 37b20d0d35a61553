package io.modelmerge.mergeservice.jobs;

import io.modelmerge.engine.exec.MergeExecutor;
import io.modelmerge.engine.exec.MergeOptions;
import io.modelmerge.engine.recipe.Recipe;
import io.modelmerge.engine.recipe.RecipeException;
import io.modelmerge.engine.search.Candidate;
import io.modelmerge.engine.search.EvaluationFailedException;
import io.modelmerge.engine.search.Evaluator;
import io.modelmerge.engine.search.Score;
import io.modelmerge.engine.search.SearchRecipes;
import io.modelmerge.mergeservice.evaluation.Evaluators;
import io.modelmerge.mergeservice.evaluation.RegisteredEvaluator;
import io.modelmerge.mergeservice.evaluation.StoredScores;
import io.modelmerge.storage.blob.BlobStore;
import jakarta.enterprise.context.ApplicationScoped;
import java.io.IOException;
import java.nio.file.Path;
import java.time.Clock;
import java.util.Map;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.concurrent.atomic.AtomicReference;

/**
 * Runs a search job (greedy_soup, evolve) into {@code work/out}: candidates are merged in the work directory and,
 * for the registered evaluator to read them, staged in the output store beside the job's uploads (deleted once
 * scored, and all of them when the search ends); scores are stored, shared by every job. Progress counts
 * candidates and keeps the best score; a cancel stops the search at the next block or candidate.
 */
@ApplicationScoped
public class SearchRun {
    private final Evaluators evaluators;
    private final StoredScores scores;
    private final JobOutputs outputs;
    private final Uploads uploads;

    public SearchRun(Evaluators evaluators, StoredScores scores, JobOutputs outputs, Uploads uploads) {
        this.evaluators = evaluators;
        this.scores = scores;
        this.outputs = outputs;
        this.uploads = uploads;
    }

    SearchRecipes.Outcome run(MergeJob job, Recipe recipe, Map<String, String> locations, MergeOptions options,
                              AtomicBoolean cancelled, AtomicReference<JobProgress> progress, Path work)
            throws IOException, RecipeException {
        RegisteredEvaluator registered;
        try {
            registered = evaluators.registered(SearchRecipes.evaluator(recipe));
        } catch (JobException e) {
            throw new RecipeException(e.getMessage());
        }
        Evaluator staged = new Staged(job, work, evaluators.client(registered, Clock.systemUTC()), cancelled);
        // candidates are merged into the work directory and read back from there, wherever the inputs may be
        MergeOptions candidates = SearchRecipes.candidateOptions(recipe, options);
        MergeExecutor executor = new MergeExecutor(candidates.withStorage(candidates.storage().withRoot(work)),
                p -> progress.updateAndGet(j -> j.withMerge(p)), cancelled);
        try {
            return SearchRecipes.run(recipe, locations, executor, staged, scores, Clock.systemUTC(),
                    job.request().seed(), p -> {
                        progress.updateAndGet(j -> j.withSearch(p));
                        Uploads.stopIfCancelled(cancelled);
                    }, work.resolve("out"));
        } finally {
            outputs.deleteCandidates(job);
        }
    }

    /**
     * Offers a candidate merged in the work directory from the output store instead (its inputs, already in
     * storage, as they are), deleting it there once scored.
     */
    private final class Staged implements Evaluator {
        private final MergeJob job;
        private final Path work;
        private final Evaluator evaluator;
        private final AtomicBoolean cancelled;

        Staged(MergeJob job, Path work, Evaluator evaluator, AtomicBoolean cancelled) {
            this.job = job;
            this.work = work.toAbsolutePath().normalize();
            this.evaluator = evaluator;
            this.cancelled = cancelled;
        }

        @Override
        public String id() {
            return evaluator.id();
        }

        @Override
        public Score score(Candidate candidate) throws EvaluationFailedException {
            if (candidate.location().contains("://")) {
                return evaluator.score(candidate);
            }
            Path local = Path.of(candidate.location()).toAbsolutePath().normalize();
            if (!local.startsWith(work)) {
                return evaluator.score(candidate);
            }
            String name = local.getFileName().toString();
            try (BlobStore store = outputs.candidate(job, name)) {
                uploads.uploadAll(local, store, cancelled);
                try {
                    return evaluator.score(new Candidate(job.id() + "/" + name, candidate.contentDigest(),
                            store.root().toString(), candidate.split(), candidate.deadline()));
                } finally {
                    outputs.deleteCandidate(job, name);
                }
            } catch (IOException e) {
                throw new EvaluationFailedException("staging " + name + " for " + id() + " failed: " + e.getMessage(), e);
            }
        }
    }
}
