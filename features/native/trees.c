/* Boosted trees in LightGBM's layout, evaluated over rows of float32 features (see detector/trees.py).
 *
 * The nodes of every tree sit in one array from node_start[t]; a child >= 0 is a node of the same tree, a child
 * < 0 is the leaf ~child, whose value sits at leaf_start[t] + leaf. A tree of one leaf has node_start -1.
 * detector/trees.py folds LightGBM's decision rule into each node: the threshold rounded down to a float (the
 * same decision for every float value), and where a missing value (NaN) and a zero go. */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define FEATURE_MASK 0xFFFFFFu
#define NAN_LEFT (1u << 31)
#define ZERO_LEFT (1u << 30)
/* LightGBM's kZeroThreshold (a double made from this float): its predictor reads smaller values as zero. */
#define ZERO_THRESHOLD 1e-35f

typedef struct {
    uint32_t feature;   /* and the flags above */
    float threshold;
    int32_t child[2];   /* left, right */
} Node;

/* Without a branch: which way a value goes is as good as random to the branch predictor. */
static inline int32_t next_node(const Node *node, const float *row) {
    float value = row[node->feature & FEATURE_MASK];
    int usual = fabsf(value) > ZERO_THRESHOLD;                    /* false for NaN too */
    int special_left = (node->feature >> (30 + (value != value))) & 1;   /* NAN_LEFT or ZERO_LEFT */
    int left = usual ? value <= node->threshold : special_left;
    return node->child[!left];
}

static inline int32_t leaf_of(const Node *nodes, int64_t base, const float *row) {
    if (base < 0)
        return 0;
    int32_t at = 0;
    while (at >= 0)
        at = next_node(nodes + base + at, row);
    return ~at;
}

/* raw[r * n_classes + k] = sum of the leaf values of class k's trees (tree t is class t % n_classes), in tree
 * order as LightGBM adds them; by walking each tree (trees_quickscore below is faster where it applies). */
void trees_predict(int64_t n_rows, int64_t n_features, const float *X, int64_t n_trees, int64_t n_classes,
                   const int64_t *node_start, const int64_t *leaf_start, const Node *nodes,
                   const double *leaf_value, double *raw) {
    memset(raw, 0, sizeof(double) * n_rows * n_classes);
    for (int64_t r = 0; r < n_rows; r++)
        for (int64_t t = 0; t < n_trees; t++)
            raw[r * n_classes + t % n_classes] += leaf_value[leaf_start[t] + leaf_of(nodes, node_start[t],
                                                                                     X + r * n_features)];
}

/* contrib[r * n_features + f] = what splits on feature f added to row r's raw score of class row_class[r], along
 * its decision paths: each split credits its feature with the change from the node's value to the child's
 * (Saabas). With the roots' values the parts add up to the raw score. */
void trees_contributions(int64_t n_rows, int64_t n_features, const float *X, const int64_t *row_class,
                         int64_t n_trees, int64_t n_classes, const int64_t *node_start, const int64_t *leaf_start,
                         const Node *nodes, const double *leaf_value, const double *node_value, double *contrib) {
    memset(contrib, 0, sizeof(double) * n_rows * n_features);
    for (int64_t r = 0; r < n_rows; r++) {
        const float *row = X + r * n_features;
        double *out = contrib + r * n_features;
        for (int64_t t = row_class[r]; t < n_trees; t += n_classes) {
            int64_t base = node_start[t];
            if (base < 0)
                continue;
            for (int32_t at = 0; at >= 0;) {
                int32_t child = next_node(nodes + base + at, row);
                double reached = child >= 0 ? node_value[base + child] : leaf_value[leaf_start[t] + ~child];
                out[nodes[base + at].feature & FEATURE_MASK] += reached - node_value[base + at];
                at = child;
            }
        }
    }
}

/* QuickScorer (Lucchese et al., SIGIR 2015): instead of walking each tree, a row visits, feature by feature,
 * the nodes whose test it fails (value > threshold, in ascending threshold order), and each such node strikes
 * out the leaves of its left subtree from its tree's set of reachable leaves. The leftmost leaf left is the one
 * the walk would reach. It does a third of the walk's work on the label booster, with no unpredictable branch.
 * Leaves are numbered left to right within each tree; trees of more than 64 leaves are walked instead. */

/* For every node of every tree, the left subtree's leaves as positions [left_first, left_end) in left-to-right
 * order, and for every leaf position its LightGBM leaf index. */
void trees_leaf_order(int64_t n_trees, const int64_t *node_start, const int64_t *leaf_start, const Node *nodes,
                      int32_t *left_first, int32_t *left_end, int32_t *leaf_at) {
    for (int64_t t = 0; t < n_trees; t++) {
        int64_t base = node_start[t];
        if (base < 0) {
            leaf_at[leaf_start[t]] = 0;
            continue;
        }
        /* In-order walk with an explicit stack: a node's left subtree's leaves are those numbered between
         * entering it and entering its right child. */
        int32_t stack[128], state[128], depth = 0, position = 0;
        stack[0] = 0, state[0] = 0;
        while (depth >= 0) {
            int32_t at = stack[depth];
            if (at < 0) {                      /* a leaf */
                leaf_at[leaf_start[t] + position++] = ~at;
                depth--;
            } else if (state[depth] == 0) {    /* entering: its left child next */
                left_first[base + at] = position;
                state[depth] = 1;
                stack[depth + 1] = nodes[base + at].child[0], state[depth + 1] = 0, depth++;
            } else if (state[depth] == 1) {    /* back from the left child: the right child next */
                left_end[base + at] = position;
                state[depth] = 2;
                stack[depth + 1] = nodes[base + at].child[1], state[depth + 1] = 0, depth++;
            } else {
                depth--;
            }
        }
    }
}

/* raw as trees_predict gives it. Per feature f, the nodes splitting on it are at [split_start[f],
 * split_start[f + 1]) in ascending threshold order (threshold, tree, strike = the leaves the node strikes out
 * when the test fails); a missing value (NaN) fails the nodes at [nan_start[f], nan_start[f + 1]) and a zero
 * those at [zero_start[f], zero_start[f + 1]) of nan_tree/nan_strike and zero_tree/zero_strike. */
void trees_quickscore(int64_t n_rows, int64_t n_features, const float *X, int64_t n_trees, int64_t n_classes,
                      const int64_t *split_start, const float *split_threshold, const int32_t *split_tree,
                      const uint64_t *split_strike, const int64_t *nan_start, const int32_t *nan_tree,
                      const uint64_t *nan_strike, const int64_t *zero_start, const int32_t *zero_tree,
                      const uint64_t *zero_strike, const int64_t *leaf_start, const int32_t *leaf_at,
                      const double *leaf_value, uint64_t *reachable, double *raw) {
    memset(raw, 0, sizeof(double) * n_rows * n_classes);
    for (int64_t r = 0; r < n_rows; r++) {
        const float *row = X + r * n_features;
        memset(reachable, 0xFF, sizeof(uint64_t) * n_trees);
        for (int64_t f = 0; f < n_features; f++) {
            float value = row[f];
            if (fabsf(value) > ZERO_THRESHOLD) {
                for (int64_t i = split_start[f], end = split_start[f + 1]; i < end && split_threshold[i] < value; i++)
                    reachable[split_tree[i]] &= split_strike[i];
            } else if (isnan(value)) {
                for (int64_t i = nan_start[f]; i < nan_start[f + 1]; i++)
                    reachable[nan_tree[i]] &= nan_strike[i];
            } else {
                for (int64_t i = zero_start[f]; i < zero_start[f + 1]; i++)
                    reachable[zero_tree[i]] &= zero_strike[i];
            }
        }
        double *out = raw + r * n_classes;
        for (int64_t t = 0; t < n_trees; t++) {
            int32_t leaf = leaf_at[leaf_start[t] + __builtin_ctzll(reachable[t])];
            out[t % n_classes] += leaf_value[leaf_start[t] + leaf];
        }
    }
}
