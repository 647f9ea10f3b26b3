package ssl

import "fmt"

// cimRecipe holds the CorInfoMax hyper-parameters of one recipe.
type cimRecipe struct {
	alpha, lam, eps float64
}

// cimRecipes returns the CorInfoMax column of DESIGN.md's recipe table
// (lam_R = lam_mu = lam). Fashion-MNIST uses the CIFAR-10 values until a
// CPU-sized recipe is tuned.
func cimRecipes() map[string]cimRecipe {
	return map[string]cimRecipe{
		"cifar10":      {alpha: 250, lam: 0.01, eps: 1e-8},
		"cifar100":     {alpha: 1000, lam: 0.01, eps: 1e-8},
		"tinyimagenet": {alpha: 500, lam: 0.1, eps: 1e-8},
		"imagenet100":  {alpha: 500, lam: 0.01, eps: 1e-8},
		"imagenet1k":   {alpha: 2000, lam: 0.1, eps: 1e-8},
		"fashionmnist": {alpha: 250, lam: 0.01, eps: 1e-8}, // = cifar10 for now
	}
}

// Recipes returns the recipe names RecipeDefaults knows, in a fixed order.
func Recipes() []string {
	return []string{"cifar10", "cifar100", "tinyimagenet", "imagenet100", "imagenet1k", "fashionmnist"}
}

// RecipeDefaults returns Defaults(method) with CorInfoMax's alpha, lam_R,
// lam_mu and eps set from the recipe table. The other methods use their
// defaults for every recipe.
func RecipeDefaults(method, recipe string) (Options, error) {
	opts, err := Defaults(method)
	if err != nil {
		return Options{}, err
	}
	r, ok := cimRecipes()[recipe]
	if !ok {
		return Options{}, fmt.Errorf("ssl: unknown recipe %q (known: %v)", recipe, Recipes())
	}
	opts.Alpha, opts.LamR, opts.LamMu, opts.Eps = r.alpha, r.lam, r.lam, r.eps
	return opts, nil
}
