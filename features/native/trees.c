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
#define ROW_BLOCK 16            /* rows taken through all trees before the next: they stay in L1 */
#define LANES 8                 /* rows walking one tree side by side: their chains of loads overlap */

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

/* raw[r * n_classes + k] = sum of the leaf values of class k's trees (tree t is class t % n_classes), in tree
 * order as LightGBM adds them. */
void trees_predict(int64_t n_rows, int64_t n_features, const float *X, int64_t n_trees, int64_t n_classes,
                   const int64_t *node_start, const int64_t *leaf_start, const Node *nodes,
                   const double *leaf_value, double *raw) {
    memset(raw, 0, sizeof(double) * n_rows * n_classes);
    for (int64_t first = 0; first < n_rows; first += ROW_BLOCK) {
        int64_t last = first + ROW_BLOCK < n_rows ? first + ROW_BLOCK : n_rows;
        for (int64_t t = 0; t < n_trees; t++) {
            int64_t k = t % n_classes;
            const double *values = leaf_value + leaf_start[t];
            if (node_start[t] < 0) {
                for (int64_t r = first; r < last; r++)
                    raw[r * n_classes + k] += values[0];
                continue;
            }
            const Node *tree = nodes + node_start[t];
            for (int64_t r0 = first; r0 < last; r0 += LANES) {
                int lanes = last - r0 < LANES ? (int)(last - r0) : LANES;
                int32_t at[LANES];
                for (int j = 0; j < LANES; j++)
                    at[j] = j < lanes ? 0 : -1;
                for (int walking = 1; walking;) {
                    walking = 0;
                    for (int j = 0; j < lanes; j++) {
                        if (at[j] >= 0)
                            at[j] = next_node(tree + at[j], X + (r0 + j) * n_features);
                        walking |= at[j] >= 0;
                    }
                }
                for (int j = 0; j < lanes; j++)
                    raw[(r0 + j) * n_classes + k] += values[~at[j]];
            }
        }
    }
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
